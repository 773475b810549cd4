"""Mask decoder: output tokens plus prompt tokens run through the two-way transformer; the image
tokens are upscaled 4x and dotted with per-token hypernetwork outputs to give mask logits.

Shapes: B prompts, K sparse prompt tokens, M = num_multimask_outputs + 1 mask tokens,
C channels, h x w the embedding grid (64 x 64), masks at 4h x 4w (256 x 256).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import MLP, LayerNorm2d
from .transformer import TwoWayTransformer


class MaskDecoder(nn.Module):
    """Predicts mask logits and IoU scores from image and prompt embeddings."""

    def __init__(
        self,
        *,
        transformer_dim: int,
        transformer: TwoWayTransformer,
        num_multimask_outputs: int = 3,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
    ) -> None:
        super().__init__()
        self.transformer_dim = transformer_dim
        self.transformer = transformer
        self.num_multimask_outputs = num_multimask_outputs
        self.num_mask_tokens = num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3)
            for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(
            transformer_dim, iou_head_hidden_dim, self.num_mask_tokens, iou_head_depth
        )

    def output_tokens(self, batch: int, sparse: torch.Tensor) -> torch.Tensor:
        """IoU token, mask tokens and the prompt tokens: B x (1 + M + K) x C."""
        fixed = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        return torch.cat([fixed.unsqueeze(0).expand(batch, -1, -1), sparse], dim=1)

    def heads(
        self, tokens: torch.Tensor, image_tokens: torch.Tensor, grid: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask logits (B x M x 4h x 4w) and IoU scores (B x M) from transformer outputs.

        Args:
            tokens: B x T x C transformer output tokens.
            image_tokens: B x L x C updated image tokens.
            grid: (h, w) of the image tokens.
        """
        b = tokens.shape[0]
        src = image_tokens.transpose(1, 2).reshape(b, self.transformer_dim, *grid)
        upscaled = self.output_upscaling(src)
        mask_tokens = tokens[:, 1 : 1 + self.num_mask_tokens, :]
        hyper = torch.stack(
            [mlp(mask_tokens[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)],
            dim=1,
        )
        c, h, w = upscaled.shape[1:]
        masks = torch.bmm(hyper, upscaled.reshape(b, c, h * w)).reshape(b, -1, h, w)
        return masks, self.iou_prediction_head(tokens[:, 0, :])

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode B prompts.

        Args:
            image_embeddings: 1 x C x h x w (shared by every prompt) or B x C x h x w.
            image_pe: 1 x C x h x w positional encoding of the grid.
            sparse_prompt_embeddings: B x K x C.
            dense_prompt_embeddings: B x C x h x w (or 1 x C x h x w).
            multimask_output: the three multimask candidates if True, else the single mask.

        Returns:
            masks: B x (3 or 1) x 4h x 4w logits; iou_pred: B x (3 or 1).
        """
        b = sparse_prompt_embeddings.shape[0]
        tokens = self.output_tokens(b, sparse_prompt_embeddings)
        if image_embeddings.shape[0] not in (1, b):
            image_embeddings = torch.repeat_interleave(
                image_embeddings, b // image_embeddings.shape[0], dim=0
            )
        src = (image_embeddings + dense_prompt_embeddings).expand(b, -1, -1, -1)
        grid = (src.shape[2], src.shape[3])
        hs, image_tokens = self.transformer(src, image_pe, tokens)
        masks, iou = self.heads(hs, image_tokens, grid)
        return select_outputs(masks, iou, multimask_output)


def select_outputs(
    masks: torch.Tensor, iou: torch.Tensor, multimask_output: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep mask tokens 1.. (multimask) or token 0 (single mask)."""
    keep = slice(1, None) if multimask_output else slice(0, 1)
    return masks[:, keep], iou[:, keep]


def upscale_logits(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of B x M x h x w logits to ``size`` (align_corners=False)."""
    return F.interpolate(masks, size, mode="bilinear", align_corners=False)


def rows_needed(low: int, size: int, kept: int) -> int:
    """Low-res rows a bilinear upscale from ``low`` to ``size`` reads for its first ``kept`` rows.

    Output row i samples around (i + 0.5) * low / size - 0.5, blending two neighbouring rows.
    """
    if size % low:
        return low
    last = (kept - 0.5) * low / size - 0.5
    return min(low, max(int(last) + 2, 1))


def upscale_padded(
    masks: torch.Tensor, size: int, input_size: tuple[int, ...], original_size: tuple[int, ...]
) -> torch.Tensor:
    """Low-res logits of a zero-padded square input -> logits at the original image size.

    Upscales to the padded ``size`` x ``size`` square, removes the padding (``input_size`` is
    the resized image before padding) and resizes to ``original_size`` (h, w). Only the low-res
    rows and columns that reach the unpadded region are upscaled: with the same scale factor the
    kept pixels are bit-identical to upscaling everything.
    """
    h, w = int(input_size[0]), int(input_size[1])
    low_h, low_w = masks.shape[-2], masks.shape[-1]
    if size % low_h == 0 and size % low_w == 0 and not torch.compiler.is_compiling():
        # The first h x w pixels of the upscale to the padded square, computed directly: the
        # kernel maps output pixels with the given scale, so they are the same values, and the
        # crop is never materialised (nor copied again by the next resize).
        rows, cols = rows_needed(low_h, size, h), rows_needed(low_w, size, w)
        masks = torch.ops.aten.upsample_bilinear2d(
            masks[..., :rows, :cols].contiguous(),
            [h, w],
            False,
            float(size // low_h),
            float(size // low_w),
        )
    else:
        masks = upscale_logits(masks, (size, size))[..., :h, :w]
    if (h, w) == (int(original_size[0]), int(original_size[1])):
        return masks  # a resize to the same size is the identity
    return upscale_logits(masks, (int(original_size[0]), int(original_size[1])))
