"""The feature pyramid SAM 3 builds from the ViT's single stride-14 map, and sine positions.

Each level (``convs.<i>``) resamples the 1024-channel map by its scale factor (two stride-2
transposed convolutions with a GELU between them for x4, one for x2, none for x1, a 2 x 2 max
pool for x0.5), then projects it to 256 channels with a 1 x 1 and a 3 x 3 convolution. The
detector and the interactive head each have such a pyramid (``convs`` and ``sam2_convs``) over
the same backbone map. At inference the levels are computed channels-last, from the ViT's own
layout, with the transposed and 1 x 1 convolutions as matrix products over the channels.

Shapes: B images, C = 256 channels, h x w the stride-14 grid.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..blocks.linear import linear


class PyramidLevel(nn.Module):
    """One level: resample by ``scale`` then ``conv_1x1`` and ``conv_3x3`` to ``dim`` channels."""

    def __init__(self, in_dim: int, dim: int, scale: float) -> None:
        super().__init__()
        self.scale = scale
        mid = in_dim
        if scale == 4.0:
            self.dconv_2x2_0 = nn.ConvTranspose2d(in_dim, in_dim // 2, kernel_size=2, stride=2)
            self.dconv_2x2_1 = nn.ConvTranspose2d(in_dim // 2, in_dim // 4, 2, stride=2)
            mid = in_dim // 4
        elif scale == 2.0:
            self.dconv_2x2 = nn.ConvTranspose2d(in_dim, in_dim // 2, kernel_size=2, stride=2)
            mid = in_dim // 2
        elif scale not in (1.0, 0.5):
            raise ValueError(f"pyramid scale {scale} is not one of 4, 2, 1, 0.5")
        self.conv_1x1 = nn.Conv2d(mid, dim, kernel_size=1)
        self.conv_3x3 = nn.Conv2d(dim, dim, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B x C_in x h x w -> B x C x (scale*h) x (scale*w)."""
        if not torch.is_grad_enabled() and self.scale != 0.5:
            return self.forward_channels_last(x.permute(0, 2, 3, 1))
        if self.scale == 4.0:
            x = self.dconv_2x2_1(F.gelu(self.dconv_2x2_0(x)))
        elif self.scale == 2.0:
            x = self.dconv_2x2(x)
        elif self.scale == 0.5:
            x = F.max_pool2d(x, kernel_size=2, stride=2)
        return self.conv_3x3(self.conv_1x1(x))

    def forward_channels_last(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` at inference from a B x h x w x C_in map (the ViT's layout).

        A stride-2 2 x 2 transposed convolution maps each input pixel to its four output
        pixels independently, so it is one matrix product over the channels (:func:`upsample`);
        the last one and the 1 x 1 convolution, with no activation between them, are one
        product (their weights multiplied). The 3 x 3 convolution runs on the channels-last
        map. Returns the B x C x (scale*h) x (scale*w) level, in channels-last memory."""
        w1, b1 = self.conv_1x1.weight.flatten(1), self.conv_1x1.bias
        if self.scale == 4.0:
            x = upsample(x, *transposed_as_linear(self.dconv_2x2_0), "gelu")
            x = upsample(x, *transposed_as_linear(self.dconv_2x2_1, w1, b1))
        elif self.scale == 2.0:
            x = upsample(x, *transposed_as_linear(self.dconv_2x2, w1, b1))
        else:
            x = linear(x, w1, b1)
        return self.conv_3x3(x.permute(0, 3, 1, 2))


def transposed_as_linear(
    conv: nn.ConvTranspose2d,
    then: torch.Tensor | None = None,
    then_bias: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A stride-2 2 x 2 transposed convolution as a (4 C_out) x C_in matrix and bias, rows in
    (row phase, column phase, channel) order; followed by the C' x C_out map ``then`` (and its
    bias) when given, folded in: (4 C') x C_in."""
    weight = conv.weight.permute(2, 3, 1, 0)  # 2 x 2 x C_out x C_in
    bias = conv.bias
    if then is not None:
        weight = torch.matmul(then, weight)  # 2 x 2 x C' x C_in
        bias = then @ bias + (0 if then_bias is None else then_bias)
    return weight.reshape(-1, weight.shape[-1]), bias.repeat(4)


def upsample(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, activation: str = "none"
) -> torch.Tensor:
    """B x h x w x C_in -> B x 2h x 2w x C_out through the matrix of
    :func:`transposed_as_linear` (``activation`` as :func:`~tijeras.models.blocks.linear.linear`
    takes it): each pixel's four output pixels, then put in place."""
    b, h, w, _ = x.shape
    c_out = weight.shape[0] // 4
    y = linear(x, weight, bias, activation).view(b, h, w, 2, 2, c_out)
    return y.permute(0, 1, 3, 2, 4, 5).reshape(b, 2 * h, 2 * w, c_out)


class Pyramid(nn.ModuleList):
    """The levels of one neck, finest first; ``forward`` computes the first ``count`` only."""

    def __init__(self, in_dim: int, dim: int, scales: tuple[float, ...]) -> None:
        super().__init__(PyramidLevel(in_dim, dim, s) for s in scales)

    def forward(self, x: torch.Tensor, count: int) -> list[torch.Tensor]:  # type: ignore[override]
        """B x C_in x h x w (NCHW view of the backbone map) -> ``count`` NCHW levels."""
        return [level(x) for level in list(self)[:count]]


@functools.lru_cache(maxsize=8)
def _sine_grid(h: int, w: int, channels: int, device: torch.device) -> torch.Tensor:
    half = channels // 2
    eps, scale = 1e-6, 2 * math.pi
    y = torch.arange(1, h + 1, dtype=torch.float32, device=device) / (h + eps) * scale
    x = torch.arange(1, w + 1, dtype=torch.float32, device=device) / (w + eps) * scale
    pos_y, pos_x = sine_features(y, half), sine_features(x, half)
    grid = torch.cat(
        [pos_y[:, None, :].expand(h, w, half), pos_x[None, :, :].expand(h, w, half)], dim=-1
    )
    return grid.permute(2, 0, 1).unsqueeze(0).contiguous()


def sine_positions(h: int, w: int, channels: int, device: torch.device) -> torch.Tensor:
    """Normalised sine positions of an h x w grid: 1 x channels x h x w (y half, then x).

    Coordinates run 1..h (1..w), divided by h (w) and scaled to 2 pi, as in DETR.
    """
    return _sine_grid(h, w, channels, torch.device(device))


def sine_features(x: torch.Tensor, features: int, temperature: float = 10000.0) -> torch.Tensor:
    """... coordinates (already scaled) -> ... x features: sin of the even frequencies
    interleaved with cos of the odd ones, frequency ``temperature^(2*(i//2)/features)``."""
    i = torch.arange(features, dtype=torch.int64, device=x.device).to(x.dtype)
    dim_t = temperature ** (2 * torch.div(i, 2, rounding_mode="floor") / features)
    pos = x[..., None] / dim_t
    return torch.stack([pos[..., 0::2].sin(), pos[..., 1::2].cos()], dim=-1).flatten(-2)
