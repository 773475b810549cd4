"""The FPN neck of SAM 2: lateral 1x1 projections of the trunk's stages to one width, fused
top-down (the coarser level upsampled 2x, nearest, and added) on the levels the config names,
and the sine positional encoding of each level (used by the video memory).

Shapes: B images, level i is B x H_i x W_i x C_i channels last on input; outputs are
B x d_model x H_i x W_i, highest resolution first.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..blocks.linear import linear
from .config import NeckConfig


class PositionEmbeddingSine(nn.Module):
    """Normalised sine/cosine encoding of the (y, x) grid: C x H x W (y half first)."""

    def __init__(self, num_pos_feats: int, temperature: float = 10000.0) -> None:
        super().__init__()
        if num_pos_feats % 2:
            raise ValueError(f"num_pos_feats must be even, got {num_pos_feats}")
        self.half = num_pos_feats // 2
        self.temperature = temperature
        self.scale = 2 * math.pi

    def _axis(self, n: int, device: torch.device) -> torch.Tensor:
        """n x half: interleaved sin/cos of positions 1..n normalised to (0, 2 pi]."""
        pos = torch.arange(1, n + 1, dtype=torch.float32, device=device)
        pos = pos / (pos[-1:] + 1e-6) * self.scale
        idx = torch.arange(self.half, dtype=torch.float32, device=device)
        dim_t = self.temperature ** (2 * torch.div(idx, 2, rounding_mode="floor") / self.half)
        angles = pos[:, None] / dim_t
        return torch.stack((angles[:, 0::2].sin(), angles[:, 1::2].cos()), dim=2).flatten(1)

    def forward(self, size: tuple[int, int], device: torch.device) -> torch.Tensor:
        """The encoding of an H x W grid: 1 x C x H x W float32."""
        h, w = size
        ys = self._axis(h, device)[:, None, :].expand(h, w, self.half)
        xs = self._axis(w, device)[None, :, :].expand(h, w, self.half)
        return torch.cat((ys, xs), dim=-1).permute(2, 0, 1)[None]


class Lateral(nn.Module):
    """A 1x1 convolution kept under the checkpoint's name (``convs.i.conv``)."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_dim, out_dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Channels-last B x H x W x C_in -> B x H x W x C_out."""
        return linear(x, self.conv.weight.flatten(1), self.conv.bias)


class FpnNeck(nn.Module):
    """Lateral projections plus top-down fusion (``convs.0`` serves the coarsest level)."""

    def __init__(self, config: NeckConfig, backbone_channel_list: tuple[int, ...]) -> None:
        super().__init__()
        if config.fpn_interp_model != "nearest":
            raise ValueError(f"unsupported FPN interpolation {config.fpn_interp_model!r}")
        self.config = config
        self.backbone_channel_list = backbone_channel_list
        self.convs = nn.ModuleList(Lateral(c, config.d_model) for c in backbone_channel_list)
        self.position_encoding = PositionEmbeddingSine(config.d_model)

    def lateral(self, level: int) -> Lateral:
        """The lateral projection of trunk level ``level`` (0 = highest resolution)."""
        return self.convs[len(self.convs) - 1 - level]

    def forward(
        self,
        xs: list[torch.Tensor],
        projections: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> list[torch.Tensor]:
        """Per-level channels-last maps (highest resolution first) -> fused maps (same order).

        Levels dropped by ``scalp`` are still computed when a finer level fuses them.

        ``projections`` maps a level to a 1x1 projection (N x C weight, N bias) applied to its
        output, as SAM 2's decoder does to levels 0 and 1. A level that is its lateral alone
        (not fused with a coarser level, not fused into a finer one) is then one product with
        the composed weight, ``W (W_l x + b_l) + b = (W W_l) x + (W b_l + b)``, in the
        projection's dtype: its C-channel map (67 MB at stride 4) is never formed.
        """
        n = len(self.convs)
        if len(xs) != n:
            raise ValueError(f"the neck expects {n} levels, got {len(xs)}")
        projections = projections or {}
        fused = self.config.fpn_top_down_levels
        out: list[torch.Tensor] = [xs[0]] * n
        prev = None
        for i in range(n - 1, -1, -1):
            projection = projections.get(i)
            if projection is not None and i not in fused and (i == 0 or i - 1 not in fused):
                out[i] = self.composed(i, xs[i], *projection)
                prev = None
                continue
            lat = self.lateral(i)(xs[i])
            if i in fused and prev is not None:
                lat = add_upsampled2x(lat, prev.to(lat.dtype))
            prev = lat
            out[i] = lat
            if projection is not None:
                weight, bias = projection
                out[i] = linear(lat.to(weight.dtype), weight, bias)
        return out

    def composed(
        self, level: int, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
    ) -> torch.Tensor:
        """``weight`` x (the lateral of ``level``) + ``bias`` as one product (float32 weights
        composed, then cast to ``weight``'s dtype)."""
        conv = self.lateral(level).conv
        w_lat, b_lat = conv.weight.flatten(1).float(), conv.bias.float()
        w = weight.float() @ w_lat
        b = weight.float() @ b_lat + bias.float()
        return linear(x.to(weight.dtype), w.to(weight.dtype), b.to(weight.dtype))


def add_upsampled2x(x: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
    """``x`` plus the nearest 2x upsampling of ``coarse`` (channels last, B x H x W x C and
    B x H/2 x W/2 x C), by broadcasting: the upsampled map is never materialised."""
    b, h, w, c = coarse.shape
    if torch.is_grad_enabled():
        up = coarse[:, :, None, :, None, :].expand(b, h, 2, w, 2, c)
        return x + up.reshape(b, 2 * h, 2 * w, c)
    x.view(b, h, 2, w, 2, c).add_(coarse[:, :, None, :, None, :])
    return x
