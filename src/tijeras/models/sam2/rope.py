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

_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}


@dataclass(frozen=True)
class RotaryTable:
    """Per-token rotation of a ... x L x D tensor.

    Attributes:
        cos: L x D, the cosine of each pair's angle, repeated for both channels of the pair.
        sin: L x D, the sine with the sign of the rotation: ``-sin`` on the pair's first
            channel, ``+sin`` on its second.
        polar: L x D/2 complex ``exp(i angle)`` where the dtype has a complex counterpart
            (float32, float64): each pair is then rotated by one complex product, one read and
            one write of the tensor instead of the real form's two products, a swap and a sum
            (7x faster on a full memory's keys); None for bfloat16 and float16.
    """

    cos: torch.Tensor
    sin: torch.Tensor
    polar: torch.Tensor | None = None

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
    polar = None
    if dtype in _COMPLEX:
        polar = torch.complex(cos, sin).to(device, _COMPLEX[dtype])
    return RotaryTable(cos2.to(device, dtype), sin2.to(device, dtype), polar)


def rotate(x: torch.Tensor, table: RotaryTable, out: torch.Tensor | None = None) -> torch.Tensor:
    """Rotate ... x L x D by the table (L tokens per group of the leading dimensions).

    ``x`` may hold several grids one after another along the token axis (... x (F*L) x D:
    memories of F frames): each grid is rotated by the same table. ``out`` (same shape, e.g.
    a slice of a larger buffer) receives the result where the table has its complex form.
    """
    n, d = x.shape[-2], x.shape[-1]
    length = table.tokens
    if n % length:
        raise ValueError(f"rotary encoding of {n} tokens: not a multiple of the grid's {length}")
    shape = (*x.shape[:-2], n // length, length, d // 2, 2)
    if table.polar is not None and table.polar.dtype == _COMPLEX.get(x.dtype):
        pairs = x.reshape(shape)
        if pairs.stride(-1) != 1 or any(s % 2 for s in pairs.stride()[:-1]):
            pairs = pairs.contiguous()
        if out is None:
            out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
        target = torch.view_as_complex(out.view(shape))
        torch.mul(torch.view_as_complex(pairs), table.polar, out=target)
        return out
    grids = x.reshape(*shape[:-2], d)
    swapped = grids.unflatten(-1, (d // 2, 2)).flip(-1).flatten(-2)
    rotated = (grids * table.cos + swapped * table.sin).reshape(x.shape)
    if out is None:
        return rotated
    return out.copy_(rotated)
