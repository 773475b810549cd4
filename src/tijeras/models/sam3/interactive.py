"""SAM 3's interactive head: points, boxes and mask prompts, answered as SAM 2 answers them.

SAM 3 carries SAM 2's prompt encoder and mask decoder (the tracker's, stored under ``tracker.``
in the checkpoint), fed by a second feature pyramid over the same ViT map
(``backbone.vision_backbone.sam2_convs``): the stride-14 level plus ``no_mem_embed`` is the image
embedding (72 x 72 at 1008 px); the stride-7 and stride-3.5 levels, projected by the decoder's
``conv_s1`` and ``conv_s0``, are added inside the output upscaling. Boxes are given to the prompt
encoder as two corner points (labels 2 and 3) before the points, as SAM 2 was trained.

The decoder is SAM 2's, shared through :mod:`tijeras.models.blocks` (the same parameters and
function; only the two-way transformer's MLPs keep SAM's ``lin1``/``lin2`` names, as SAM 3's
checkpoint does), and so is its fast evaluation: the prompt-independent part once per image,
then each prompt.

Shapes: B prompts, N points, C channels, h x w the stride-14 grid, masks 4h x 4w.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..blocks import sam2_fast_decode as sam2_fast
from ..blocks.common import MLPBlock
from ..blocks.prompt_encoder import PromptEncoder
from ..blocks.prompts import merge_boxes_into_points
from ..blocks.sam2_config import Sam2DecoderConfig
from ..blocks.sam2_decoder import Sam2MaskDecoder
from .config import Sam3Config


class InteractiveHead(nn.Module):
    """``sam_prompt_encoder``, ``sam_mask_decoder`` and ``no_mem_embed``."""

    def __init__(self, config: Sam3Config) -> None:
        super().__init__()
        dim, grid, ic = config.dim, config.grid, config.interactive
        self.sam_prompt_encoder = PromptEncoder(
            embed_dim=dim,
            image_embedding_size=(grid, grid),
            input_image_size=(config.image_size, config.image_size),
            mask_in_chans=ic.mask_in_chans,
        )
        decoder_config = Sam2DecoderConfig(
            transformer_depth=ic.transformer_depth,
            transformer_heads=ic.transformer_heads,
            transformer_mlp_dim=ic.transformer_mlp_dim,
            iou_head_hidden_dim=ic.iou_head_hidden_dim,
            mask_in_chans=ic.mask_in_chans,
        )
        self.sam_mask_decoder = Sam2MaskDecoder(decoder_config, dim)
        for layer in self.sam_mask_decoder.transformer.layers:
            layer.mlp = MLPBlock(dim, ic.transformer_mlp_dim, nn.ReLU)
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, dim))

    def image_features(self, levels: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """The interactive pyramid's three finest NCHW levels -> the per-image tensors:
        ``interactive`` (1 x C x h x w, with ``no_mem_embed``), ``interactive_s1``
        (1 x C/4 x 2h x 2w) and ``interactive_s0`` (1 x C/8 x 4h x 4w)."""
        dec = self.sam_mask_decoder
        top = levels[2] + self.no_mem_embed.reshape(1, -1, 1, 1).to(levels[2].dtype)
        return {
            "interactive": top,
            "interactive_s1": F.conv2d(levels[1], dec.conv_s1.weight, dec.conv_s1.bias),
            "interactive_s0": F.conv2d(levels[0], dec.conv_s0.weight, dec.conv_s0.bias),
        }

    def prepare(self, extra: dict[str, torch.Tensor]) -> sam2_fast.Sam2ImageTokens:
        """The decoder's prompt-independent part for one image (see :meth:`image_features`)."""
        high_res = (extra["interactive_s0"], extra["interactive_s1"])
        return sam2_fast.prepare_image(
            self.sam_mask_decoder, self.sam_prompt_encoder, extra["interactive"], high_res
        )

    def decode(
        self,
        prepared: sam2_fast.Sam2ImageTokens,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        masks: torch.Tensor | None,
        multimask: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Input-frame prompts -> mask logits B x (3|1) x 4h x 4w, IoU B x (3|1) and
        object-score logits B x 1.

        Args:
            points: B x N x 2 xy and B x N labels (1, 0, -1 padding), or None.
            boxes: B x 4 xyxy, or None.
            masks: B x 1 x 4h x 4w low-res logits of an earlier prediction, or None.
        """
        points = merge_boxes_into_points(points, boxes)
        sparse, dense = self.sam_prompt_encoder(points=points, boxes=None, masks=masks)
        return sam2_fast.decode(
            self.sam_mask_decoder, prepared, sparse, None if masks is None else dense, multimask
        )
