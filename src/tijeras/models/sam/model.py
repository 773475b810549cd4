"""The SAM model: image encoder + prompt encoder + mask decoder, with SAM's pixel statistics.

``Sam`` keeps the attribute names of the official checkpoints (``image_encoder``,
``prompt_encoder``, ``mask_decoder``) so their state_dicts load as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...automatic.options import SAM_EVERYTHING
from ...contract import InputSpec
from ...types import Decoded, ImageEmbedding, PreparedImage, PromptBatch
from ..blocks import fast_decode
from ..blocks.mask_decoder import MaskDecoder, upscale_padded
from ..blocks.prompt_encoder import PromptEncoder
from ..blocks.promptable import PromptableModel
from ..blocks.transformer import TwoWayTransformer
from .config import SamConfig, TinyViTConfig, ViTConfig
from .image_encoder import ImageEncoderViT


def _build_image_encoder(config: ViTConfig | TinyViTConfig) -> nn.Module:
    """SAM's ViT or MobileSAM's TinyViT, by the type of the encoder config."""
    if isinstance(config, TinyViTConfig):
        from .tiny_vit import TinyViT

        return TinyViT(config)
    return ImageEncoderViT(config)


class Sam(PromptableModel):
    """Segment Anything: B x 3 x H x W images and prompts to mask logits and IoU scores.

    Implements :class:`tijeras.contract.SegmentationModel` and :class:`~tijeras.contract.Trainable`;
    ``forward`` is Meta's batched end-to-end interface.
    """

    everything_defaults = SAM_EVERYTHING

    def __init__(self, config: SamConfig) -> None:
        super().__init__()
        self.config = config
        self.mask_threshold = config.mask_threshold
        grid = config.embedding_size
        self.input_spec = InputSpec(
            image_size=config.image_size,
            resize="longest_side",
            embedding_grid=(grid, grid),
            mask_input_size=(4 * grid, 4 * grid),
            mask_threshold=config.mask_threshold,
        )
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
        self.register_pixel_stats(config.pixel_mean, config.pixel_std)

    # ------------------------------------------------ the model contract
    def prompt_modules(self) -> tuple[nn.Module, nn.Module]:
        return self.prompt_encoder, self.mask_decoder

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise a B x 3 x h x w (0-255, resized) image and zero-pad it to a square.

        The padding is added after normalisation, so padded pixels are exactly zero.
        """
        x = (x.to(self.pixel_mean.dtype) - self.pixel_mean) / self.pixel_std
        size = self.config.image_size
        h, w = x.shape[-2:]
        return F.pad(x, (0, size - w, 0, size - h))

    def encode_image(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The B x C x h x w embedding of a preprocessed input (SAM has no extras)."""
        return self.image_encoder(x), {}

    def prepare(self, embedding: ImageEmbedding) -> PreparedImage:
        """The decoder's prompt-independent tensors for one image (see ``fast_decode``)."""
        state = fast_decode.prepare_image(
            self.mask_decoder, self.prompt_encoder, embedding.features.to(self.dtype)
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
        """Low-res logits (B x C x 256 x 256) and IoU scores (B x C) for input-frame prompts.

        With ``masks_only`` the logits are computed only where :meth:`postprocess_masks` reads
        them (the unpadded image; the rest holds the lowest float).
        """
        points = None if prompts.points is None else (prompts.points, prompts.labels)
        sparse, dense = self.prompt_encoder(points=points, boxes=prompts.boxes, masks=prompts.masks)
        region = None
        if masks_only:
            region = fast_decode.image_region(
                prepared.embedding.input_size,
                self.config.image_size,
                self.input_spec.mask_input_size,
                self.input_spec.embedding_grid,
            )
        low_res, iou = fast_decode.decode(
            self.mask_decoder,
            prepared.state,
            sparse,
            None if prompts.masks is None else dense,
            multimask,
            region,
        )
        return Decoded(low_res, iou)

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
        return upscale_padded(masks, self.config.image_size, input_size, original_size)

    # ------------------------------------------------ training (contract.Trainable)
    def decode_train(
        self,
        features: torch.Tensor,
        prompts: PromptBatch,
        *,
        multimask: bool,
        extra: Mapping[str, torch.Tensor] | None = None,
    ) -> Decoded:
        """The plain decoder (autograd): B x C x h x w features, one per prompt (SAM has no
        extras)."""
        points = None if prompts.points is None else (prompts.points, prompts.labels)
        sparse, dense = self.prompt_encoder(points=points, boxes=prompts.boxes, masks=prompts.masks)
        low_res, iou = self.mask_decoder(
            image_embeddings=features,
            image_pe=self.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask,
        )
        return Decoded(low_res, iou)

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
