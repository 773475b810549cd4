"""The SAM model: image encoder + prompt encoder + mask decoder, with SAM's pixel statistics.

``Sam`` keeps the attribute names of the official checkpoints (``image_encoder``,
``prompt_encoder``, ``mask_decoder``) so their state_dicts load as they are.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .config import SamConfig, TinyViTConfig, ViTConfig
from .image_encoder import ImageEncoderViT
from .mask_decoder import MaskDecoder, upscale_logits
from .prompt_encoder import PromptEncoder
from .transformer import TwoWayTransformer


def _build_image_encoder(config: ViTConfig | TinyViTConfig) -> nn.Module:
    """SAM's ViT or MobileSAM's TinyViT, by the type of the encoder config."""
    if isinstance(config, TinyViTConfig):
        from .tiny_vit import TinyViT

        return TinyViT(config)
    return ImageEncoderViT(config)


def rows_needed(low: int, size: int, kept: int) -> int:
    """Low-res rows a bilinear upscale from ``low`` to ``size`` reads for its first ``kept`` rows.

    Output row i samples around (i + 0.5) * low / size - 0.5, blending two neighbouring rows.
    """
    if size % low:
        return low
    last = (kept - 0.5) * low / size - 0.5
    return min(low, max(int(last) + 2, 1))


class Sam(nn.Module):
    """Segment Anything: B x 3 x H x W images and prompts to mask logits and IoU scores."""

    image_format = "RGB"

    def __init__(self, config: SamConfig) -> None:
        super().__init__()
        self.config = config
        self.mask_threshold = config.mask_threshold
        grid = config.embedding_size
        dec = config.decoder
        self.image_encoder = _build_image_encoder(config.encoder)
        self.prompt_encoder = PromptEncoder(
            embed_dim=config.prompt_embed_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(config.image_size, config.image_size),
            mask_in_chans=dec.mask_in_chans,
        )
        self.mask_decoder = MaskDecoder(
            transformer_dim=config.prompt_embed_dim,
            transformer=TwoWayTransformer(
                depth=dec.transformer_depth,
                embedding_dim=config.prompt_embed_dim,
                num_heads=dec.transformer_heads,
                mlp_dim=dec.transformer_mlp_dim,
                attention_downsample_rate=dec.attention_downsample_rate,
            ),
            num_multimask_outputs=dec.num_multimask_outputs,
            iou_head_depth=dec.iou_head_depth,
            iou_head_hidden_dim=dec.iou_head_hidden_dim,
        )
        self.register_buffer(
            "pixel_mean", torch.tensor(config.pixel_mean).view(-1, 1, 1), persistent=False
        )
        self.register_buffer(
            "pixel_std", torch.tensor(config.pixel_std).view(-1, 1, 1), persistent=False
        )

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    @property
    def dtype(self) -> torch.dtype:
        return self.mask_decoder.iou_token.weight.dtype

    @property
    def encoder_dtype(self) -> torch.dtype:
        return next(self.image_encoder.parameters()).dtype

    @property
    def image_size(self) -> int:
        return self.config.image_size

    # ------------------------------------------------ the interface the predictor uses
    # Every promptable model family (SAM, MobileSAM, SAM 2) provides these members, so the
    # predictor, everything mode, the CLI and the server work with any of them.
    input_resize = "longest_side"  # how engine.transforms.resize_for fits an image to the input

    @property
    def embedding_grid(self) -> tuple[int, int]:
        """(h, w) of the image embedding grid."""
        return tuple(self.prompt_encoder.image_embedding_size)

    @property
    def mask_input_size(self) -> tuple[int, int]:
        """(h, w) of the low-res mask prompt (and of the low-res logits)."""
        return tuple(self.prompt_encoder.mask_input_size)

    def encode_image(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The embedding of a preprocessed 1 x 3 x S x S input, plus family-specific extras."""
        return self.image_encoder(x), {}

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

        ``embedding`` is an :class:`tijeras.types.ImageEmbedding`; the prompt-independent part
        of the decoder is computed on first use and kept in its ``decoder_state``. With
        ``image_only`` the logits are computed only where :meth:`postprocess_masks` reads them
        (the unpadded image; the rest holds the lowest float): for callers that only want masks.
        """
        from . import fast_decode

        sparse, dense = self.prompt_encoder(points=points, boxes=boxes, masks=masks)
        if embedding.decoder_state is None:
            embedding.decoder_state = fast_decode.prepare_image(
                self.mask_decoder, self.prompt_encoder, embedding.features
            )
        return fast_decode.decode(
            self.mask_decoder,
            embedding.decoder_state,
            sparse,
            None if masks is None else dense,
            multimask_output,
            self._image_region(embedding.input_size) if image_only else None,
        )

    def _image_region(self, input_size: tuple[int, int]) -> tuple[int, int]:
        from .fast_decode import image_region

        return image_region(
            input_size, self.config.image_size, self.mask_input_size, self.embedding_grid
        )

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise a B x 3 x h x w (0-255, resized) image and zero-pad it to a square.

        The padding is added after normalisation, so padded pixels are exactly zero.
        """
        x = (x.to(self.pixel_mean.dtype) - self.pixel_mean) / self.pixel_std
        size = self.config.image_size
        h, w = x.shape[-2:]
        return F.pad(x, (0, size - w, 0, size - h))

    def postprocess_masks(
        self,
        masks: torch.Tensor,
        input_size: tuple[int, ...],
        original_size: tuple[int, ...],
    ) -> torch.Tensor:
        """Low-res logits (B x M x 256 x 256) -> logits at the original image size.

        Upscales to the padded input square, removes the padding (``input_size`` is the resized
        image before padding) and resizes to ``original_size`` (h, w).
        """
        size = self.config.image_size
        h, w = int(input_size[0]), int(input_size[1])
        # Only the low-res rows/columns that reach the unpadded h x w region are upscaled:
        # with the same scale factor the kept output pixels are bit-identical.
        rows, cols = rows_needed(masks.shape[-2], size, h), rows_needed(masks.shape[-1], size, w)
        scale_h, scale_w = size // masks.shape[-2], size // masks.shape[-1]
        masks = masks[..., :rows, :cols]
        masks = upscale_logits(masks, (rows * scale_h, cols * scale_w))[..., :h, :w]
        if (h, w) == (int(original_size[0]), int(original_size[1])):
            return masks  # a resize to the same size is the identity
        return upscale_logits(masks, (int(original_size[0]), int(original_size[1])))

    @torch.no_grad()
    def forward(
        self, batched_input: list[dict[str, Any]], multimask_output: bool
    ) -> list[dict[str, torch.Tensor]]:
        """End-to-end prediction over several images, each with its own prompts.

        Each input dict holds ``image`` (3 x H x W, already resized so the longest side is
        ``image_size``), ``original_size`` (h, w), and optionally ``point_coords`` (B x N x 2),
        ``point_labels`` (B x N), ``boxes`` (B x 4) and ``mask_inputs`` (B x 1 x 256 x 256),
        all in the resized frame. Each output dict holds ``masks`` (B x M x h x w bool),
        ``iou_predictions`` (B x M) and ``low_res_logits`` (B x M x 256 x 256).
        """
        images = torch.stack([self.preprocess(x["image"]) for x in batched_input], dim=0)
        embeddings = self.image_encoder(images)
        outputs = []
        for record, embedding in zip(batched_input, embeddings):
            points = None
            if "point_coords" in record:
                points = (record["point_coords"], record["point_labels"])
            sparse, dense = self.prompt_encoder(
                points=points, boxes=record.get("boxes"), masks=record.get("mask_inputs")
            )
            low_res, iou = self.mask_decoder(
                image_embeddings=embedding.unsqueeze(0),
                image_pe=self.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=multimask_output,
            )
            masks = self.postprocess_masks(
                low_res, record["image"].shape[-2:], record["original_size"]
            )
            outputs.append(
                {
                    "masks": masks > self.mask_threshold,
                    "iou_predictions": iou,
                    "low_res_logits": low_res,
                }
            )
        return outputs
