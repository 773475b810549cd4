"""The SAM 2 mask decoder (SAM 2's image model and SAM 3's interactive head): SAM's decoder
(same two-way transformer, tokens and heads) with three additions:

- high-resolution features: the stride-4 and stride-8 backbone levels, projected by ``conv_s0``
  and ``conv_s1``, are added inside the output upscaling (after each transposed convolution);
- an object-score token and head (``pred_obj_scores``): a logit saying whether the prompted
  object is present at all;
- dynamic single-mask output: when one mask is asked for and the single-mask token's logits are
  unstable (low stability score), the best multimask candidate is returned instead.

Shapes: B prompts, K sparse tokens, M = 4 mask tokens, C = 256 channels, 64 x 64 grid,
masks at 256 x 256.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import MLP
from .mask_decoder import MaskDecoder
from .sam2_config import Sam2DecoderConfig
from .transformer import TwoWayTransformer


def build_transformer(config: Sam2DecoderConfig, dim: int) -> TwoWayTransformer:
    """SAM's two-way transformer with the token MLPs named as in SAM 2 checkpoints.

    SAM 2 names the block MLP ``mlp.layers.0/1`` (ReLU between) where SAM says ``lin1/lin2``;
    the function is the same.
    """
    transformer = TwoWayTransformer(
        depth=config.transformer_depth,
        embedding_dim=dim,
        num_heads=config.transformer_heads,
        mlp_dim=config.transformer_mlp_dim,
    )
    for layer in transformer.layers:
        layer.mlp = MLP(dim, config.transformer_mlp_dim, dim, 2)
    return transformer


class Sam2MaskDecoder(MaskDecoder):
    """Mask logits, IoU scores and object-score logits from image and prompt embeddings."""

    def __init__(self, config: Sam2DecoderConfig, dim: int = 256) -> None:
        super().__init__(
            transformer_dim=dim,
            transformer=build_transformer(config, dim),
            num_multimask_outputs=config.num_multimask_outputs,
            iou_head_depth=config.iou_head_depth,
            iou_head_hidden_dim=config.iou_head_hidden_dim,
        )
        self.config = config
        self.iou_prediction_head = MLP(
            dim,
            config.iou_head_hidden_dim,
            self.num_mask_tokens,
            config.iou_head_depth,
            sigmoid_output=config.iou_prediction_use_sigmoid,
        )
        if config.pred_obj_scores:
            self.obj_score_token = nn.Embedding(1, dim)
            if config.pred_obj_scores_mlp:
                self.pred_obj_score_head: nn.Module = MLP(dim, dim, 1, 3)
            else:
                self.pred_obj_score_head = nn.Linear(dim, 1)
        if config.use_high_res_features:
            self.conv_s0 = nn.Conv2d(dim, dim // 8, kernel_size=1)
            self.conv_s1 = nn.Conv2d(dim, dim // 4, kernel_size=1)

    @property
    def num_extra_tokens(self) -> int:
        """Output tokens before the mask tokens: (object score,) IoU."""
        return 2 if self.config.pred_obj_scores else 1

    def output_tokens(self, batch: int, sparse: torch.Tensor) -> torch.Tensor:
        """(Object score,) IoU, mask tokens, then the prompt tokens: B x (2 + M + K) x C."""
        parts = [self.iou_token.weight, self.mask_tokens.weight]
        if self.config.pred_obj_scores:
            parts.insert(0, self.obj_score_token.weight)
        fixed = torch.cat(parts, dim=0)
        return torch.cat([fixed.unsqueeze(0).expand(batch, -1, -1), sparse], dim=1)

    def object_scores(self, tokens: torch.Tensor) -> torch.Tensor:
        """B x 1 object-score logits from the transformer's output tokens (10 when absent)."""
        if not self.config.pred_obj_scores:
            return tokens.new_full((tokens.shape[0], 1), 10.0)
        return self.pred_obj_score_head(tokens[:, 0, :])

    def upscale(
        self, src: torch.Tensor, high_res: tuple[torch.Tensor, torch.Tensor] | None
    ) -> torch.Tensor:
        """B x C x h x w -> B x C/8 x 4h x 4w, adding the projected high-res levels if used."""
        if high_res is None:
            return self.output_upscaling(src)
        up1, norm, act1, up2, act2 = self.output_upscaling
        feat_s0, feat_s1 = high_res
        x = act1(norm(up1(src) + feat_s1))
        return act2(up2(x) + feat_s0)

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool,
        high_res_features: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Decode B prompts (the plain reference path; the predictor uses ``fast_decode``).

        Args:
            image_embeddings: 1 x C x h x w (shared by every prompt) or B x C x h x w.
            image_pe: 1 x C x h x w positional encoding of the grid.
            sparse_prompt_embeddings: B x K x C.
            dense_prompt_embeddings: B x C x h x w (or 1 x C x h x w).
            multimask_output: three candidates, else one (see :func:`select_masks`).
            high_res_features: projected stride-4 (1 x C/8 x 4h x 4w) and stride-8
                (1 x C/4 x 2h x 2w) features.

        Returns:
            masks B x (3|1) x 4h x 4w, IoU B x (3|1), object-score logits B x 1.
        """
        b = sparse_prompt_embeddings.shape[0]
        tokens = self.output_tokens(b, sparse_prompt_embeddings)
        src = (image_embeddings + dense_prompt_embeddings).expand(b, -1, -1, -1)
        h, w = src.shape[-2:]
        hs, image_tokens = self.transformer(src, image_pe, tokens)
        s = self.num_extra_tokens
        src = image_tokens.transpose(1, 2).reshape(b, -1, h, w)
        upscaled = self.upscale(src, high_res_features)
        hyper = torch.stack(
            [mlp(hs[:, s + i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1
        )
        c = upscaled.shape[1]
        masks = torch.bmm(hyper, upscaled.reshape(b, c, -1)).reshape(b, -1, 4 * h, 4 * w)
        iou = self.iou_prediction_head(hs[:, s - 1, :])
        masks, iou = select_masks(self.config, masks, iou, multimask_output)
        return masks, iou, self.object_scores(hs)


def stability_scores(logits: torch.Tensor, delta: float) -> torch.Tensor:
    """IoU of the masks thresholded at +delta and -delta: ... x H x W -> ... (1 if empty)."""
    flat = logits.flatten(-2)
    inter = (flat > delta).sum(-1).float()
    union = (flat > -delta).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def select_masks(
    config: Sam2DecoderConfig, masks: torch.Tensor, iou: torch.Tensor, multimask_output: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick the outputs from all M tokens: tokens 1.. (multimask), else token 0, falling back
    to the best-scoring multimask candidate where token 0's mask is unstable (if configured)."""
    if multimask_output:
        return masks[:, 1:], iou[:, 1:]
    if not config.dynamic_multimask_via_stability:
        return masks[:, :1], iou[:, :1]
    rows = torch.arange(masks.shape[0], device=masks.device)
    best = iou[:, 1:].argmax(dim=-1) + 1
    stable = stability_scores(masks[:, 0], config.dynamic_multimask_stability_delta)
    stable = stable >= config.dynamic_multimask_stability_thresh
    pick = torch.where(stable, torch.zeros_like(best), best)
    return masks[rows, pick].unsqueeze(1), iou[rows, pick].unsqueeze(1)


def project_high_res(
    decoder: Sam2MaskDecoder, level0: torch.Tensor, level1: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``conv_s0`` / ``conv_s1`` on NCHW neck levels 0 and 1 (as the image encoder output)."""
    return (
        F.conv2d(level0, decoder.conv_s0.weight, decoder.conv_s0.bias),
        F.conv2d(level1, decoder.conv_s1.weight, decoder.conv_s1.bias),
    )
