"""The SAM 2 image model: Hiera trunk + FPN neck, SAM's prompt encoder, the SAM 2 mask decoder,
and the video modules every checkpoint carries.

``Sam2Model`` keeps the checkpoint's attribute names (``image_encoder.trunk``,
``image_encoder.neck``, ``sam_prompt_encoder``, ``sam_mask_decoder``, ``memory_attention``,
``memory_encoder``, ``no_mem_embed``, ...) so official state_dicts load strictly as they are.
It provides the members :class:`tijeras.Predictor` drives every model family with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...automatic.options import SAM2_EVERYTHING, EverythingOptions
from ...contract import InputSpec
from ...types import Decoded, ImageEmbedding, PreparedImage, PromptBatch
from ..blocks.common import MLP
from ..blocks.prompt_encoder import PromptEncoder
from ..blocks.promptable import PromptableModel
from ..blocks.prompts import merge_boxes_into_points
from . import fast_decode
from .config import Sam2Config
from .decoder import Sam2MaskDecoder
from .hiera import Hiera
from .holes import low_res_cleanup
from .memory import MemoryAttention, MemoryEncoder
from .meta_names import Sam2MetaNames
from .neck import FpnNeck


class ImageEncoder(nn.Module):
    """Trunk and neck: B x 3 x 1024 x 1024 -> NCHW levels at strides 4, 8, 16."""

    def __init__(self, config: Sam2Config) -> None:
        super().__init__()
        self.trunk = Hiera(config.trunk)
        self.neck = FpnNeck(config.neck, config.trunk.channel_list)
        self.scalp = config.neck.scalp

    def forward_channels_last(
        self,
        x: torch.Tensor,
        projections: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> list[torch.Tensor]:
        """The kept neck levels as channels-last B x H_i x W_i x C maps, finest first; levels
        named in ``projections`` come projected (see :meth:`FpnNeck.forward`)."""
        levels = self.neck(self.trunk(x), projections)
        return levels[: len(levels) - self.scalp] if self.scalp else levels

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The kept neck levels, B x C x H_i x W_i, finest first."""
        return [f.permute(0, 3, 1, 2) for f in self.forward_channels_last(x)]


class Sam2Model(Sam2MetaNames, PromptableModel):
    """SAM 2 / SAM 2.1 for images (the video modules are loaded but not run here).

    Implements :class:`tijeras.contract.SegmentationModel` and :class:`~tijeras.contract.Trainable`.

    The video-only parameters: ``maskmem_tpos_enc``, ``no_mem_pos_enc``, ``no_obj_ptr``,
    ``no_obj_embed_spatial`` (2.1), ``mask_downsample``, ``obj_ptr_proj``, ``obj_ptr_tpos_proj``
    (2.1), ``memory_encoder`` and ``memory_attention`` (see :mod:`tijeras.sam2.memory`).
    """

    everything_defaults = SAM2_EVERYTHING

    def __init__(self, config: Sam2Config) -> None:
        super().__init__()
        self.config = config
        self.mask_threshold = config.mask_threshold
        dim, mem = config.hidden_dim, config.memory
        grid = config.embedding_size
        self.input_spec = InputSpec(
            image_size=config.image_size,
            resize="square",
            embedding_grid=(grid, grid),
            mask_input_size=(4 * grid, 4 * grid),
            mask_threshold=config.mask_threshold,
        )
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
        self.register_pixel_stats(config.pixel_mean, config.pixel_std)

    # ------------------------------------------------ the model contract
    def prompt_modules(self) -> tuple[nn.Module, nn.Module]:
        return self.sam_prompt_encoder, self.sam_mask_decoder

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise a B x 3 x 1024 x 1024 image of 0-255 values with ImageNet statistics."""
        x = x.to(self.pixel_mean.dtype) / 255.0
        return (x - self.pixel_mean) / self.pixel_std

    def encode_image(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """B x 3 x 1024 x 1024 normalised -> the B x 256 x 64 x 64 embedding (with
        ``no_mem_embed`` added, as for a single image) and the projected high-res levels
        ``high_res_0`` (B x 32 x 256 x 256) and ``high_res_1`` (B x 64 x 128 x 128)."""
        top, high_res = self.encode_levels(x)
        top = top + self.no_mem_embed.to(top.dtype)
        features = top.permute(0, 3, 1, 2).contiguous()
        extra: dict[str, torch.Tensor] = {}
        if high_res is not None:
            extra["high_res_0"], extra["high_res_1"] = high_res
        return features, extra

    def encode_levels(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        """B x 3 x S x S normalised -> the stride-16 level (channels last, B x h x w x C) and,
        where the decoder uses them, levels 0 and 1 projected by its ``conv_s0`` / ``conv_s1``
        (NCHW, the decoder's dtype; each one product with the neck's lateral, see
        :meth:`FpnNeck.forward`)."""
        dec = self.sam_mask_decoder
        if not dec.config.use_high_res_features:
            return self.image_encoder.forward_channels_last(x)[-1], None
        convs = (dec.conv_s0, dec.conv_s1)
        projections = {i: (c.weight.flatten(1), c.bias) for i, c in enumerate(convs)}
        levels = self.image_encoder.forward_channels_last(x, projections)
        high_res = [levels[i].permute(0, 3, 1, 2).contiguous() for i in (0, 1)]
        return levels[-1], (high_res[0], high_res[1])

    def high_res_features(
        self, extra: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The (stride-4, stride-8) projected levels of an embedding's ``extra``, if used."""
        if not self.sam_mask_decoder.config.use_high_res_features:
            return None
        return extra["high_res_0"], extra["high_res_1"]

    def prepare(self, embedding: ImageEmbedding) -> PreparedImage:
        """The decoder's prompt-independent tensors for one image (see ``fast_decode``)."""
        high_res = self.high_res_features(embedding.extra)
        if high_res is not None:
            high_res = (high_res[0].to(self.dtype), high_res[1].to(self.dtype))
        state = fast_decode.prepare_image(
            self.sam_mask_decoder,
            self.sam_prompt_encoder,
            embedding.features.to(self.dtype),
            high_res,
        )
        return PreparedImage(embedding, state)

    def decode(
        self,
        prepared: PreparedImage,
        prompts: PromptBatch,
        *,
        multimask: bool,
        masks_only: bool = False,
    ) -> Decoded:
        """Low-res logits (B x C x 256 x 256), IoU scores (B x C) and object-score logits
        (B x 1) for input-frame prompts.

        Boxes are given to the prompt encoder as two corner points (labels 2 and 3) ahead of
        the points, as SAM 2 was trained. ``masks_only`` changes nothing: SAM 2 resizes images
        to the whole square, so every logit is inside the image.
        """
        points = None if prompts.points is None else (prompts.points, prompts.labels)
        points = merge_boxes_into_points(points, prompts.boxes)
        sparse, dense = self.sam_prompt_encoder(points=points, boxes=None, masks=prompts.masks)
        low_res, iou, obj = fast_decode.decode(
            self.sam_mask_decoder,
            prepared.state,
            sparse,
            None if prompts.masks is None else dense,
            multimask,
        )
        return Decoded(low_res, iou, object_scores=obj)

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

    # ------------------------------------------------ training (contract.Trainable)
    def decode_train(
        self,
        features: torch.Tensor,
        prompts: PromptBatch,
        *,
        multimask: bool,
        extra: Mapping[str, torch.Tensor] | None = None,
    ) -> Decoded:
        """The plain decoder (autograd): B x C x h x w features, one per prompt; ``extra``
        holds the projected high-res levels (``high_res_0``, ``high_res_1``) when used."""
        high_res = None if extra is None else self.high_res_features(extra)
        points = None if prompts.points is None else (prompts.points, prompts.labels)
        points = merge_boxes_into_points(points, prompts.boxes)
        sparse, dense = self.sam_prompt_encoder(points=points, boxes=None, masks=prompts.masks)
        low_res, iou, obj = self.sam_mask_decoder(
            image_embeddings=features,
            image_pe=self.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask,
            high_res_features=high_res,
        )
        return Decoded(low_res, iou, object_scores=obj)

    # ------------------------------------------------ everything mode
    def mask_generator(self, options: EverythingOptions, output_mode: str = "binary_mask") -> Any:
        """Everything mode with SAM 2's meaning of ``min_mask_region_area``: holes and specks
        of at most that many low-res pixels are cleaned from each candidate's logits before
        upscaling (as Meta's generator asks of its predictor), instead of cleaning the masks."""
        from ...automatic.generator import AutoMaskGenerator

        cleanup = low_res_cleanup(options.min_mask_region_area, self.mask_threshold)
        return AutoMaskGenerator(self, options, output_mode=output_mode, low_res_cleanup=cleanup)
