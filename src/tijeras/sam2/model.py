"""The SAM 2 image model: Hiera trunk + FPN neck, SAM's prompt encoder, the SAM 2 mask decoder,
and the video modules every checkpoint carries.

``Sam2Model`` keeps the checkpoint's attribute names (``image_encoder.trunk``,
``image_encoder.neck``, ``sam_prompt_encoder``, ``sam_mask_decoder``, ``memory_attention``,
``memory_encoder``, ``no_mem_embed``, ...) so official state_dicts load strictly as they are.
It provides the members :class:`tijeras.Predictor` drives every model family with.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..model.common import MLP
from ..model.prompt_encoder import PromptEncoder
from .config import Sam2Config
from .decoder import Sam2MaskDecoder
from .hiera import Hiera
from .memory import MemoryAttention, MemoryEncoder
from .neck import FpnNeck


class ImageEncoder(nn.Module):
    """Trunk and neck: B x 3 x 1024 x 1024 -> NCHW levels at strides 4, 8, 16."""

    def __init__(self, config: Sam2Config) -> None:
        super().__init__()
        self.trunk = Hiera(config.trunk)
        self.neck = FpnNeck(config.neck, config.trunk.channel_list)
        self.scalp = config.neck.scalp

    def forward_channels_last(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The kept neck levels as channels-last B x H_i x W_i x C maps, finest first."""
        levels = self.neck(self.trunk(x))
        return levels[: len(levels) - self.scalp] if self.scalp else levels

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The kept neck levels, B x C x H_i x W_i, finest first."""
        return [f.permute(0, 3, 1, 2) for f in self.forward_channels_last(x)]


class Sam2Model(nn.Module):
    """SAM 2 / SAM 2.1 for images (the video modules are loaded but not run).

    The video-only parameters: ``maskmem_tpos_enc``, ``no_mem_pos_enc``, ``no_obj_ptr``,
    ``no_obj_embed_spatial`` (2.1), ``mask_downsample``, ``obj_ptr_proj``, ``obj_ptr_tpos_proj``
    (2.1), ``memory_encoder`` and ``memory_attention`` (see :mod:`tijeras.sam2.memory`).
    """

    image_format = "RGB"
    input_resize = "square"  # engine.transforms.resize_for: the whole image to 1024 x 1024

    def __init__(self, config: Sam2Config) -> None:
        super().__init__()
        self.config = config
        self.mask_threshold = config.mask_threshold
        dim, mem = config.hidden_dim, config.memory
        grid = config.embedding_size
        self.image_encoder = ImageEncoder(config)
        self.sam_prompt_encoder = PromptEncoder(
            embed_dim=dim,
            image_embedding_size=(grid, grid),
            input_image_size=(config.image_size, config.image_size),
            mask_in_chans=config.decoder.mask_in_chans,
        )
        self.sam_mask_decoder = Sam2MaskDecoder(config.decoder, dim)
        self.memory_attention = MemoryAttention(mem, dim)
        self.memory_encoder = MemoryEncoder(mem, dim)
        self.maskmem_tpos_enc = nn.Parameter(torch.zeros(mem.num_maskmem, 1, 1, mem.mem_dim))
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, dim))
        self.no_mem_pos_enc = nn.Parameter(torch.zeros(1, 1, dim))
        self.no_obj_ptr = nn.Parameter(torch.zeros(1, dim))
        if mem.no_obj_embed_spatial:
            self.no_obj_embed_spatial = nn.Parameter(torch.zeros(1, mem.mem_dim))
        self.mask_downsample = nn.Conv2d(1, 1, kernel_size=4, stride=4)
        self.obj_ptr_proj: nn.Module = (
            MLP(dim, dim, dim, 3) if mem.use_mlp_for_obj_ptr_proj else nn.Linear(dim, dim)
        )
        if mem.proj_tpos_enc_in_obj_ptrs:
            self.obj_ptr_tpos_proj = nn.Linear(dim, mem.mem_dim)
        self.register_buffer(
            "pixel_mean", torch.tensor(config.pixel_mean).view(-1, 1, 1), persistent=False
        )
        self.register_buffer(
            "pixel_std", torch.tensor(config.pixel_std).view(-1, 1, 1), persistent=False
        )
        self.last_object_score_logits: torch.Tensor | None = None

    # ------------------------------------------------ the interface the predictor uses
    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    @property
    def dtype(self) -> torch.dtype:
        return self.sam_mask_decoder.iou_token.weight.dtype

    @property
    def encoder_dtype(self) -> torch.dtype:
        return self.image_encoder.trunk.patch_embed.proj.weight.dtype

    @property
    def image_size(self) -> int:
        return self.config.image_size

    @property
    def embedding_grid(self) -> tuple[int, int]:
        """(h, w) of the image embedding grid."""
        return tuple(self.sam_prompt_encoder.image_embedding_size)

    @property
    def mask_input_size(self) -> tuple[int, int]:
        """(h, w) of the low-res mask prompt (and of the low-res logits)."""
        return tuple(self.sam_prompt_encoder.mask_input_size)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise a B x 3 x 1024 x 1024 image of 0-255 values with ImageNet statistics."""
        x = x.to(self.pixel_mean.dtype) / 255.0
        return (x - self.pixel_mean) / self.pixel_std

    def encode_image(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """B x 3 x 1024 x 1024 normalised -> the B x 256 x 64 x 64 embedding (with
        ``no_mem_embed`` added, as for a single image) and the projected high-res levels
        ``high_res_0`` (B x 32 x 256 x 256) and ``high_res_1`` (B x 64 x 128 x 128)."""
        levels = self.image_encoder.forward_channels_last(x)
        top = levels[-1] + self.no_mem_embed.to(levels[-1].dtype)
        features = top.permute(0, 3, 1, 2).contiguous()
        extra: dict[str, torch.Tensor] = {}
        dec = self.sam_mask_decoder
        if dec.config.use_high_res_features:
            for i, conv in enumerate((dec.conv_s0, dec.conv_s1)):
                proj = F.linear(levels[i], conv.weight.flatten(1), conv.bias)
                extra[f"high_res_{i}"] = proj.permute(0, 3, 1, 2).contiguous()
        return features, extra

    def high_res_features(self, extra: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...] | None:
        """The (stride-4, stride-8) projected levels of an embedding's ``extra``, if used."""
        if not self.sam_mask_decoder.config.use_high_res_features:
            return None
        return extra["high_res_0"], extra["high_res_1"]

    def decode_prompts(
        self,
        embedding: Any,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        masks: torch.Tensor | None,
        multimask_output: bool,
        image_only: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Low-res logits (B x C x 256 x 256) and IoU scores (B x C) for input-frame prompts.

        Boxes are given to the prompt encoder as two corner points (labels 2 and 3) ahead of
        the points, as SAM 2 was trained. The object-score logits (B x 1) of the call are kept
        in ``last_object_score_logits``. ``image_only`` changes nothing: SAM 2 resizes images
        to the whole square, so every logit is inside the image.
        """
        from . import fast_decode

        points = merge_boxes_into_points(points, boxes)
        sparse, dense = self.sam_prompt_encoder(points=points, boxes=None, masks=masks)
        if embedding.decoder_state is None:
            embedding.decoder_state = fast_decode.prepare_image(
                self.sam_mask_decoder,
                self.sam_prompt_encoder,
                embedding.features,
                self.high_res_features(embedding.extra),
            )
        low_res, iou, obj = fast_decode.decode(
            self.sam_mask_decoder,
            embedding.decoder_state,
            sparse,
            None if masks is None else dense,
            multimask_output,
        )
        self.last_object_score_logits = obj
        return low_res, iou

    def postprocess_masks(
        self,
        masks: torch.Tensor,
        input_size: tuple[int, ...],
        original_size: tuple[int, ...],
    ) -> torch.Tensor:
        """Low-res logits (B x M x 256 x 256) -> B x M x H x W logits (bilinear, straight to
        the original size: the input square has no padding to remove)."""
        size = (int(original_size[0]), int(original_size[1]))
        return F.interpolate(masks, size, mode="bilinear", align_corners=False)

    def mask_generator(self, **options: Any) -> Any:
        """SAM 2's everything-mode generator for this model."""
        from .generator import SAM2AutomaticMaskGenerator

        return SAM2AutomaticMaskGenerator(self, **options)


def merge_boxes_into_points(
    points: tuple[torch.Tensor, torch.Tensor] | None, boxes: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """B x 4 boxes as corner points (labels 2, 3) placed before B x N points."""
    if boxes is None:
        return points
    corners = boxes.reshape(-1, 2, 2).float()
    labels = torch.tensor([[2, 3]], dtype=torch.int, device=boxes.device)
    labels = labels.expand(corners.shape[0], 2)
    if points is None:
        return corners, labels
    coords, point_labels = points
    b = max(corners.shape[0], coords.shape[0])
    coords = torch.cat([corners.expand(b, -1, -1), coords.float().expand(b, -1, -1)], dim=1)
    point_labels = point_labels.to(labels.dtype).expand(b, -1)
    return coords, torch.cat([labels.expand(b, -1), point_labels], dim=1)
