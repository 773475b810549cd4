"""The mask head (MaskFormer-style): per-pixel embeddings at stride 14/4, dotted with one
embedding per query.

1. The fused image tokens attend once more to the prompt (``cross_attend_prompt`` after
   ``cross_attn_norm``, residual).
2. The pixel decoder starts from them (as a stride-14 map) and, coarse to fine, upsamples
   (nearest), adds the neck's stride-7 and stride-3.5 levels, and applies a 3 x 3 convolution,
   GroupNorm(8) and ReLU: the B x C x 4h x 4w pixel embedding.
3. ``instance_seg_head`` (1 x 1) projects it; each query's ``mask_embed`` MLP output is dotted
   with every pixel: B x Q x 4h x 4w mask logits. ``semantic_seg_head`` gives one more logit
   map (the union of the instances), B x 1 x 4h x 4w.

At inference the same functions are computed with less work (:class:`SkipConvs`,
:meth:`PixelDecoder.forward_split`, :meth:`MaskHead.mask_logits`):

- the convolution is linear, so ``conv(up(x) + skip) = conv(up(x)) + conv(skip)``: the neck
  levels are convolved once per image, and only the prompt's map goes through it per prompt;
- a 3 x 3 convolution of a nearest-upsampled map is four 2 x 2 convolutions of the coarse map
  (one per output phase: the taps that read the same coarse pixel are summed), 16 instead of
  36 multiply-adds per coarse pixel and channel pair;
- ``instance_seg_head`` is folded into the query embeddings: ``e . (W p + b)`` is
  ``(e W) . p + e . b``, so only the kept queries are projected, not every pixel.

Shapes: B prompts, Q queries, C channels, h x w the stride-14 grid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import MLP, Attention, key_mask


class PixelDecoder(nn.Module):
    """Top-down fusion of the pyramid: ``conv_layers`` and ``norms``, one per finer level."""

    def __init__(self, dim: int, stages: int) -> None:
        super().__init__()
        self.conv_layers = nn.ModuleList(
            nn.Conv2d(dim, dim, kernel_size=3, padding=1) for _ in range(stages)
        )
        self.norms = nn.ModuleList(nn.GroupNorm(8, dim) for _ in range(stages))

    def forward(self, levels: list[torch.Tensor]) -> torch.Tensor:
        """Levels finest first (the coarsest one prompt-fused) -> B x C x H0 x W0."""
        x = levels[-1]
        for i, skip in enumerate(reversed(levels[:-1])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="nearest") + skip
            x = F.relu(self.norms[i](self.conv_layers[i](x)))
        return x

    def skip_convs(self, finer: list[torch.Tensor]) -> list[torch.Tensor]:
        """``conv_i(skip_i)`` (bias included) of the neck levels, in decoding order (coarse
        first): the prompt-independent half of each stage, once per image. Dense (NCHW) like
        the per-prompt maps they are added to: the neck's levels come out of oneDNN's
        convolutions channels-last, and an addition across layouts would transpose the whole
        stride-3.5 map on every prompt."""
        return [conv(skip).contiguous() for conv, skip in zip(self.conv_layers, reversed(finer))]

    def forward_split(self, coarse: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        """:meth:`forward` from the B x C x h x w prompt map and :meth:`skip_convs`: each
        stage is ``relu(norm(upsampled_conv(x) + conv(skip)))``."""
        x = coarse
        for i, skip in enumerate(skips):
            if tuple(skip.shape[-2:]) != (2 * x.shape[-2], 2 * x.shape[-1]):
                y = self.conv_layers[i](F.interpolate(x, size=skip.shape[-2:], mode="nearest"))
                y = y - self.conv_layers[i].bias.view(-1, 1, 1)  # the skip holds the bias
            else:
                y = upsampled_conv(x, self.conv_layers[i].weight)
            x = F.relu_(self.norms[i](y.add_(skip)))
        return x


def upsampled_conv(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``conv3x3(nearest_upsample_2x(x))`` (padding 1, no bias) as 2 x 2 convolutions of x.

    Output pixel (2i + a, 2j + b) reads the coarse rows i - 1 + a, i + a and columns
    j - 1 + b, j + b; each of its 3 x 3 taps lands on one of those, so the taps on the same
    coarse pixel are summed into a 2 x 2 kernel per phase (a, b). The four phase kernels run
    as one convolution with 4C outputs over the coarse map padded by one pixel.

    Args:
        x: B x C x h x w.
        weight: C' x C x 3 x 3.

    Returns:
        B x C' x 2h x 2w.
    """
    b, _, h, w = x.shape
    out = weight.shape[0]
    rows = [weight[:, :, :1].clone(), weight[:, :, 1:].sum(2, keepdim=True)]  # phase a = 0
    rows = [
        torch.cat(rows, 2),
        torch.cat([weight[:, :, :2].sum(2, keepdim=True), weight[:, :, 2:]], 2),  # a = 1
    ]
    phases = []
    for k in rows:
        phases.append(torch.cat([k[..., :1], k[..., 1:].sum(3, keepdim=True)], 3))  # b = 0
        phases.append(torch.cat([k[..., :2].sum(3, keepdim=True), k[..., 2:]], 3))  # b = 1
    y = F.conv2d(F.pad(x, (1, 1, 1, 1)), torch.cat(phases, 0))  # B x 4C' x (h+1) x (w+1)
    fine = y.new_empty(b, out, h, 2, w, 2)
    for p, (a, c) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        fine[:, :, :, a, :, c] = y[:, p * out : (p + 1) * out, a : a + h, c : c + w]
    return fine.view(b, out, 2 * h, 2 * w)


class MaskPredictor(nn.Module):
    """``mask_embed``: the 3-layer MLP giving each query its mask embedding."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.mask_embed = MLP([dim, dim, dim, dim])

    def forward(self, queries: torch.Tensor) -> torch.Tensor:
        return self.mask_embed(queries)


class MaskHead(nn.Module):
    """Instance mask logits (and the semantic logits) of B prompts' queries."""

    def __init__(self, dim: int, heads: int, stages: int) -> None:
        super().__init__()
        self.pixel_decoder = PixelDecoder(dim, stages)
        self.mask_predictor = MaskPredictor(dim)
        self.cross_attend_prompt = Attention(dim, heads)
        self.cross_attn_norm = nn.LayerNorm(dim)
        self.semantic_seg_head = nn.Conv2d(dim, 1, kernel_size=1)
        self.instance_seg_head = nn.Conv2d(dim, dim, kernel_size=1)

    def pixel_embedding(
        self,
        image: torch.Tensor,
        grid: tuple[int, int],
        finer: list[torch.Tensor],
        prompt: torch.Tensor,
        prompt_valid: torch.Tensor | None,
    ) -> torch.Tensor:
        """The B x C x 4h x 4w pixel embedding.

        Args:
            image: B x L x C fused image tokens.
            grid: (h, w), h*w = L.
            finer: the neck's 1 x C x 4h x 4w and 1 x C x 2h x 2w levels.
            prompt: B x P x C prompt tokens, valid flags B x P.
        """
        coarse = self.prompt_map(image, grid, prompt, prompt_valid)
        levels = [f.expand(coarse.shape[0], -1, -1, -1) for f in finer] + [coarse]
        return self.pixel_decoder(levels)

    def prompt_map(
        self,
        image: torch.Tensor,
        grid: tuple[int, int],
        prompt: torch.Tensor,
        prompt_valid: torch.Tensor | None,
    ) -> torch.Tensor:
        """The fused tokens B x L x C after the prompt cross-attention, as B x C x h x w."""
        y = self.cross_attn_norm(image)
        image = image + self.cross_attend_prompt(y, prompt, prompt, key_mask(prompt_valid))
        b, _, c = image.shape
        return image.transpose(1, 2).reshape(b, c, *grid)

    def mask_logits(self, embeddings: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
        """N x C query embeddings (``mask_predictor``'s) and a 1 x C x H x W pixel embedding ->
        N x H x W logits, ``instance_seg_head`` folded into the embeddings."""
        head = self.instance_seg_head
        weight = head.weight.flatten(1)  # C x C
        folded = embeddings @ weight
        offset = embeddings @ head.bias
        c, hw = pixels.shape[1], pixels.shape[-2] * pixels.shape[-1]
        flat = torch.addmm(offset[:, None], folded, pixels.reshape(c, hw))
        return flat.view(-1, *pixels.shape[-2:])

    def forward(
        self,
        queries: torch.Tensor,
        image: torch.Tensor,
        grid: tuple[int, int],
        finer: list[torch.Tensor],
        prompt: torch.Tensor,
        prompt_valid: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask logits B x Q x 4h x 4w and semantic logits B x 1 x 4h x 4w of B x Q queries."""
        pixels = self.pixel_embedding(image, grid, finer, prompt, prompt_valid)
        instance = self.instance_seg_head(pixels)
        masks = torch.einsum("bqc,bchw->bqhw", self.mask_predictor(queries), instance)
        return masks, self.semantic_seg_head(pixels)
