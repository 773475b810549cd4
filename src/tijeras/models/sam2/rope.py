"""Axial rotary position encoding (RoPE) of the memory attention.

Channel pairs (2j, 2j+1) of a query or key at grid position (x, y) are rotated by an angle
that grows with the position: the first half of the pairs by ``x * f_j``, the second half by
``y * f_j``, with frequencies ``f_j = theta ** (-4j / D)``. The dot product of a rotated query
and a rotated key then depends on their relative offset, so the memory attention needs no
additive spatial encoding on its queries.

Shapes: L = h * w grid tokens in row-major order (x fastest), D channels per head.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class RotaryTable:
    """Per-token rotation, laid out to rotate a ... x L x D tensor with two products.

    Attributes:
        cos: L x D, the cosine of each pair's angle, repeated for both channels of the pair.
        sin: L x D, the sine with the sign of the rotation: ``-sin`` on the pair's first
            channel, ``+sin`` on its second.
    """

    cos: torch.Tensor
    sin: torch.Tensor

    @property
    def tokens(self) -> int:
        return self.cos.shape[0]


def axial_angles(dim: int, grid: tuple[int, int], theta: float = 10000.0) -> torch.Tensor:
    """L x D/2 rotation angles of an h x w grid (x pairs first, then y pairs), float32."""
    if dim % 4:
        raise ValueError(f"axial RoPE needs a head width divisible by 4, got {dim}")
    h, w = grid
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 4)[: dim // 4].float() / dim))
    t = torch.arange(h * w, dtype=torch.float32)
    tx = t % w
    ty = torch.div(t, w, rounding_mode="floor")
    return torch.cat([torch.outer(tx, freqs), torch.outer(ty, freqs)], dim=-1)


def rotary_table(
    dim: int,
    grid: tuple[int, int],
    theta: float = 10000.0,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> RotaryTable:
    """The rotation table of an h x w grid for heads of width ``dim``."""
    angles = axial_angles(dim, grid, theta)
    cos, sin = torch.cos(angles), torch.sin(angles)
    cos2 = torch.stack([cos, cos], dim=-1).flatten(-2)
    sin2 = torch.stack([-sin, sin], dim=-1).flatten(-2)
    return RotaryTable(cos2.to(device, dtype), sin2.to(device, dtype))


def rotate(x: torch.Tensor, table: RotaryTable) -> torch.Tensor:
    """Rotate ... x L x D by the table (L tokens per group of the leading dimensions).

    ``x`` may hold several grids one after another along the token axis (... x (F*L) x D:
    memories of F frames): each grid is rotated by the same table.
    """
    n, d = x.shape[-2], x.shape[-1]
    length = table.tokens
    if n % length:
        raise ValueError(f"rotary encoding of {n} tokens: not a multiple of the grid's {length}")
    grids = x.reshape(*x.shape[:-2], n // length, length, d)
    swapped = grids.unflatten(-1, (d // 2, 2)).flip(-1).flatten(-2)
    out = grids * table.cos + swapped * table.sin
    return out.reshape(x.shape)
