"""SAM 3's image backbone: a plain ViT at 1008 px with 2-D rotary position encoding.

A 14 x 14 patch embedding (no bias) gives a 72 x 72 grid of tokens, to which a learned position
embedding, trained on a 24 x 24 grid, is added by tiling it (not interpolating it); a LayerNorm
follows. Each block is pre-norm attention and a GELU MLP. Most blocks attend inside 24 x 24
windows; a few (``global_blocks``) attend over the whole grid. Every block rotates its queries
and keys by their 2-D position (axial RoPE: the first half of each head's frequency pairs turn
with the column, the second half with the row); global blocks scale the positions by
``window / grid`` so the angles span the range the windows see.

The map stays channels-last (B x h x w x C) from the patch embedding to the output.

Shapes: B images, h x w token grid, C channels, H heads, D = C / H, N tokens per window.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..blocks.attention import attention
from ..blocks.linear import Linear, linear, uses_onednn
from .config import ViTConfig


def axial_rope(side: int, head_dim: int, scale: float, theta: float) -> torch.Tensor:
    """Complex rotations of a side x side grid: (side*side) x D/2, row-major tokens.

    Pair ``i < D/4`` turns by ``col * scale * f_i``, pair ``D/4 + i`` by ``row * scale * f_i``,
    with ``f_i = theta^(-4i/D)``.
    """
    half = head_dim // 2
    cpu = torch.device("cpu")  # also under a ``torch.device("meta")`` context
    freqs = 1.0 / theta ** (torch.arange(0, half, 2, dtype=torch.float32, device=cpu) / half)
    rows, cols = torch.meshgrid(
        torch.arange(side, dtype=torch.float32, device=cpu),
        torch.arange(side, dtype=torch.float32, device=cpu),
        indexing="ij",
    )
    x = (cols.flatten() * scale)[:, None] * freqs
    y = (rows.flatten() * scale)[:, None] * freqs
    angles = torch.cat([x, y], dim=-1)
    return torch.polar(torch.ones_like(angles), angles)


def apply_rope(x: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
    """Rotate consecutive channel pairs of B x H x N x D by the N x D/2 complex ``rope``."""
    pairs = torch.view_as_complex(x.float().unflatten(-1, (-1, 2)))
    return torch.view_as_real(pairs * rope).flatten(-2).to(x.dtype)


def window_partition(x: torch.Tensor, window: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """B x h x w x C -> (B * windows) x (window*window) x C, zero-padding h and w up to whole
    windows; also returns the padded (h, w)."""
    b, h, w, c = x.shape
    ph, pw = -h % window, -w % window
    if ph or pw:
        x = F.pad(x, (0, 0, 0, pw, 0, ph))
    hp, wp = h + ph, w + pw
    x = x.view(b, hp // window, window, wp // window, window, c).transpose(2, 3)
    return x.reshape(-1, window * window, c), (hp, wp)


def window_unpartition(
    windows: torch.Tensor, window: int, padded: tuple[int, int], size: tuple[int, int]
) -> torch.Tensor:
    """The inverse of :func:`window_partition`: back to B x h x w x C, padding removed."""
    hp, wp = padded
    c = windows.shape[-1]
    x = windows.view(-1, hp // window, wp // window, window, window, c).transpose(2, 3)
    x = x.reshape(-1, hp, wp, c)
    h, w = size
    return x[:, :h, :w] if (hp, wp) != (h, w) else x


class ViTAttention(nn.Module):
    """Self-attention with fused ``qkv`` and 2-D RoPE on queries and keys."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = Linear(dim, 3 * dim)
        self.proj = Linear(dim, dim)

    def forward(self, x: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
        """B x N x C tokens (a window or the whole grid) -> B x N x C."""
        b, n, c = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q, k = apply_rope(q, rope), apply_rope(k, rope)
        out = attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


# Tokens per MLP chunk at inference: the hidden activations of 1024 tokens (4736 wide, 19 MB)
# stay in cache between fc1, the GELU and fc2 instead of streaming 100 MB through memory.
MLP_CHUNK = 1024


class Mlp(nn.Module):
    """``fc2(gelu(fc1(x)))``; at inference, ``chunk`` tokens at a time with an in-place GELU."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = Linear(dim, hidden)
        self.fc2 = Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            return self.fc2(F.gelu(self.fc1(x)))
        flat = x.reshape(-1, x.shape[-1])
        out = torch.empty_like(flat)
        fc1, fc2 = self.fc1, self.fc2
        fused = uses_onednn(flat, fc1.weight)
        for i in range(0, flat.shape[0], MLP_CHUNK):
            rows = flat[i : i + MLP_CHUNK]
            if fused:  # the GELU inside oneDNN's product, float32 on the CPU
                hidden = linear(rows, fc1.weight, fc1.bias, "gelu")
                out[i : i + MLP_CHUNK] = linear(hidden, fc2.weight, fc2.bias)
                continue
            hidden = F.linear(rows, fc1.weight, fc1.bias)
            torch.ops.aten.gelu_(hidden)
            torch.addmm(fc2.bias, hidden, fc2.weight.t(), out=out[i : i + MLP_CHUNK])
        return out.view(x.shape)


class Block(nn.Module):
    """Pre-norm windowed (``window > 0``) or global attention, then the MLP."""

    def __init__(self, config: ViTConfig, window: int) -> None:
        super().__init__()
        dim = config.width
        self.window = window
        self.norm1 = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.attn = ViTAttention(dim, config.heads)
        self.norm2 = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.mlp = Mlp(dim, config.mlp_dim)
        side = window if window else config.grid
        # A plain attribute, not a buffer: ``Module.to(dtype)`` would cast a complex buffer to
        # real. Kept in complex64 on the CPU and copied once to each device used.
        self._rope = {
            torch.device("cpu"): axial_rope(
                side, dim // config.heads, config.window_size / side, config.rope_theta
            )
        }

    def rope(self, device: torch.device) -> torch.Tensor:
        """The block's N x D/2 complex rotations on ``device``."""
        table = self._rope.get(device)
        if table is None:
            table = self._rope[device] = self._rope[torch.device("cpu")].to(device)
        return table

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B x h x w x C -> B x h x w x C."""
        b, h, w, c = x.shape
        y = self.norm1(x)
        rope = self.rope(x.device)
        if self.window:
            windows, padded = window_partition(y, self.window)
            y = window_unpartition(self.attn(windows, rope), self.window, padded, (h, w))
        else:
            y = self.attn(y.reshape(b, h * w, c), rope).view(b, h, w, c)
        if torch.is_grad_enabled():
            x = x + y
            return x + self.mlp(self.norm2(x))
        x = y.add_(x)  # the attention output is a fresh tensor: reuse it for the sum
        return x.add_(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    """Non-overlapping patches -> channels-last tokens (no bias)."""

    def __init__(self, patch: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B x 3 x S x S -> B x S/p x S/p x C."""
        return self.proj(x).permute(0, 2, 3, 1)


class ViT(nn.Module):
    """The backbone: B x 3 x S x S normalised images -> the B x h x w x C last map."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        if config.image_size % config.patch_size:
            raise ValueError(
                f"image size {config.image_size} is not a multiple of patch {config.patch_size}"
            )
        self.config = config
        self.patch_embed = PatchEmbed(config.patch_size, config.width)
        self.pos_embed = nn.Parameter(torch.zeros(1, config.pretrain_grid**2, config.width))
        self.ln_pre = nn.LayerNorm(config.width, eps=config.layer_norm_eps)
        self.blocks = nn.ModuleList(
            Block(config, 0 if i in config.global_blocks else config.window_size)
            for i in range(config.depth)
        )

    def tiled_pos_embed(self, h: int, w: int) -> torch.Tensor:
        """The learned P x P position embedding repeated over an h x w grid: 1 x h x w x C."""
        p = self.config.pretrain_grid
        grid = self.pos_embed.view(1, p, p, -1)
        if (h, w) == (p, p):
            return grid
        return grid.repeat(1, -(-h // p), -(-w // p), 1)[:, :h, :w]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Patch embedding + tiled positions + LayerNorm: B x h x w x C."""
        x = self.patch_embed(x)
        x = x + self.tiled_pos_embed(x.shape[1], x.shape[2]).to(x.dtype)
        return self.ln_pre(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        for block in self.blocks:
            x = block(x)
        return x
