"""The Hiera trunk of SAM 2: a four-stage vision transformer on channels-last feature maps.

Every block is pre-norm attention plus an MLP. Attention is local (non-overlapping windows,
zero-padded to a whole number of windows after the norm) except in the few global blocks. The
first block of stages 2-4 halves the resolution by max-pooling its queries (and its projected
shortcut) 2 x 2, and doubles the channels and heads. The positional embedding is a bicubically
resized background embedding plus a window embedding tiled over the map.

Shapes: B images, H x W token grid (256 x 256 after the stride-4 patch embedding of a
1024 x 1024 input), C channels, channels last (B x H x W x C) throughout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..blocks.attention import LONG_KEYS, attention
from ..blocks.linear import Linear, linear, uses_onednn
from .config import HieraConfig

# Tokens per chunk in the MLP: the hidden activations of a chunk stay in cache.
MLP_CHUNK = 2048
# Tokens per slab of window rows in windowed blocks (see MultiScaleBlock._forward_in_slabs).
SLAB_TOKENS = 2048


def pool2x2(x: torch.Tensor, stride: tuple[int, int]) -> torch.Tensor:
    """Max-pool a B x H x W x C map by ``stride`` (floor), channels last.

    The 2 x 2 case is the maximum of four strided views (much faster than a reduction over
    small axes); other strides use ``max_pool2d``.
    """
    b, h, w, c = x.shape
    sh, sw = stride
    if (sh, sw) != (2, 2):
        return F.max_pool2d(x.permute(0, 3, 1, 2), stride).permute(0, 2, 3, 1)
    if h % 2 or w % 2:
        x = x[:, : h - h % 2, : w - w % 2]
        h, w = x.shape[1:3]
    v = x.reshape(b, h // 2, 2, w // 2, 2, c)
    top = torch.maximum(v[:, :, 0, :, 0], v[:, :, 0, :, 1])
    return torch.maximum(top, torch.maximum(v[:, :, 1, :, 0], v[:, :, 1, :, 1]))


def window_partition(x: torch.Tensor, size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """B x H x W x C -> (B * nW) x size x size x C, zero-padding H and W to multiples of size."""
    b, h, w, c = x.shape
    ph, pw = -h % size, -w % size
    if ph or pw:
        x = F.pad(x, (0, 0, 0, pw, 0, ph))
    hp, wp = h + ph, w + pw
    x = x.view(b, hp // size, size, wp // size, size, c).transpose(2, 3)
    return x.reshape(-1, size, size, c), (hp, wp)


def window_unpartition(
    windows: torch.Tensor, size: int, padded: tuple[int, int], hw: tuple[int, int]
) -> torch.Tensor:
    """(B * nW) x size x size x C -> B x H x W x C, dropping the padding."""
    hp, wp = padded
    b = windows.shape[0] // ((hp // size) * (wp // size))
    x = windows.view(b, hp // size, wp // size, size, size, -1).transpose(2, 3)
    x = x.reshape(b, hp, wp, -1)
    if hp > hw[0] or wp > hw[1]:
        x = x[:, : hw[0], : hw[1]]
    return x


class MultiScaleAttention(nn.Module):
    """Multi-head self-attention over windows, with optional query pooling."""

    def __init__(
        self, dim: int, dim_out: int, num_heads: int, q_stride: tuple[int, int] | None
    ) -> None:
        super().__init__()
        self.dim_out = dim_out
        self.num_heads = num_heads
        self.q_stride = q_stride
        self.qkv = Linear(dim, dim_out * 3)
        self.proj = Linear(dim_out, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B x H x W x C -> B x H' x W' x C_out (H' = H / stride when pooling queries)."""
        b, h, w, _ = x.shape
        heads = self.num_heads
        qkv = self.qkv(x).view(b, h * w, 3, heads, -1)
        q, k, v = qkv.unbind(2)  # B x N x heads x D
        if self.q_stride is not None:
            q = pool2x2(q.reshape(b, h, w, -1), self.q_stride)
            h, w = q.shape[1:3]
            q = q.view(b, h * w, heads, -1)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        if k.shape[2] >= LONG_KEYS:  # global blocks: products on oneDNN in float32
            out = attention(q, k, v)
        else:
            out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(1, 2).reshape(b, h, w, -1)
        return self.proj(out)


class MultiScaleBlock(nn.Module):
    """Norm, (windowed) attention with optional query pooling, residual, norm, MLP, residual."""

    def __init__(
        self,
        dim: int,
        dim_out: int,
        num_heads: int,
        mlp_ratio: float,
        q_stride: tuple[int, int] | None,
        window_size: int,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.dim_out = dim_out
        self.window_size = window_size
        self.q_stride = q_stride
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = MultiScaleAttention(dim, dim_out, num_heads, q_stride)
        self.norm2 = nn.LayerNorm(dim_out, eps=1e-6)
        self.mlp = GeluMLP(dim_out, int(dim_out * mlp_ratio))
        if dim != dim_out:
            self.proj = Linear(dim, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B x H x W x C -> B x H' x W' x C_out."""
        whole = torch.is_grad_enabled() or torch.compiler.is_compiling()  # training, capture
        if self.window_size > 0 and x.device.type == "cpu" and not whole:
            return self._forward_in_slabs(x)
        return self._forward_map(x)

    def _forward_map(self, x: torch.Tensor) -> torch.Tensor:
        """The block over the whole map at once (training, and global attention)."""
        shortcut = x
        x = self.norm1(x)
        if self.dim != self.dim_out:
            shortcut = self.proj(x)
            if self.q_stride is not None:
                shortcut = pool2x2(shortcut, self.q_stride)
        size = self.window_size
        if size > 0:
            x, padded = window_partition(x, size)
        x = self.attn(x)
        if size > 0:
            if self.q_stride is not None:
                size = size // self.q_stride[0]
                hw = shortcut.shape[1:3]
                padded = (hw[0] + -hw[0] % size, hw[1] + -hw[1] % size)
            x = window_unpartition(x, size, padded, shortcut.shape[1:3])
        x = shortcut + x
        return mlp_residual(x, self.norm2, self.mlp)

    def _forward_in_slabs(self, x: torch.Tensor) -> torch.Tensor:
        """The windowed block one slab of whole window rows at a time (CPU inference).

        Windows never straddle slabs and every step is per token or per window, so this is the
        same function as :meth:`_forward_map`; but the block's large intermediates (the
        normalised map, its windows, the qkv projection: up to 150 MB at stride 4) exist only
        a slab (about :data:`SLAB_TOKENS` tokens) at a time and stay in cache, instead of being
        allocated, faulted in and streamed through memory for the whole map.
        """
        b, h, w, _ = x.shape
        size = self.window_size
        rows = size * max(1, SLAB_TOKENS // (size * w))
        stride = self.q_stride[0] if self.q_stride is not None else 1
        out = x.new_empty(b, h // stride, w // stride, self.dim_out)
        for r0 in range(0, h, rows):
            slab = x[:, r0 : r0 + rows]
            o0 = r0 // stride
            part = self._forward_map(slab)
            out[:, o0 : o0 + part.shape[1]] = part
        return out


class GeluMLP(nn.Module):
    """Two linear layers with GELU between them (``layers.0``, ``layers.1``)."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([Linear(dim, hidden_dim), Linear(hidden_dim, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.layers[0]
        return self.layers[1](linear(x, first.weight, first.bias, "gelu"))


def mlp_residual(x: torch.Tensor, norm: nn.LayerNorm, mlp: GeluMLP) -> torch.Tensor:
    """``x + mlp(norm(x))`` for B x H x W x C, in chunks of tokens that stay in cache."""
    flat = x.reshape(-1, x.shape[-1])
    if flat.shape[0] <= MLP_CHUNK or torch.is_grad_enabled() or torch.compiler.is_compiling():
        return x + mlp(norm(x))
    out = torch.empty_like(flat)
    fc1, fc2 = mlp.layers
    for start in range(0, flat.shape[0], MLP_CHUNK):
        part = flat[start : start + MLP_CHUNK]
        hidden = linear(norm(part), fc1.weight, fc1.bias, "gelu")
        if uses_onednn(hidden, fc2.weight):
            out[start : start + MLP_CHUNK] = linear(hidden, fc2.weight, fc2.bias)
        else:
            torch.addmm(fc2.bias, hidden, fc2.weight.t(), out=out[start : start + MLP_CHUNK])
        out[start : start + MLP_CHUNK] += part
    return out.view(x.shape)


class PatchEmbed(nn.Module):
    """7 x 7 stride-4 convolution: B x 3 x S x S -> B x S/4 x S/4 x C."""

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=7, stride=4, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


class Hiera(nn.Module):
    """The trunk: returns one channels-last feature map per stage (strides 4, 8, 16, 32)."""

    def __init__(self, config: HieraConfig) -> None:
        super().__init__()
        self.config = config
        dim, heads = config.embed_dim, config.num_heads
        self.patch_embed = PatchEmbed(dim)
        self.pos_embed = nn.Parameter(
            torch.zeros(1, dim, *config.window_pos_embed_bkg_spatial_size)
        )
        size0 = config.window_spec[0]
        self.pos_embed_window = nn.Parameter(torch.zeros(1, dim, size0, size0))
        ends = config.stage_ends
        pool_blocks = [e + 1 for e in ends[:-1]][: config.q_pool]
        blocks = []
        stage = 0
        for i in range(sum(config.stages)):
            dim_out = dim
            # A stage's first block still uses the previous stage's window size.
            window = 0 if i in config.global_att_blocks else config.window_spec[stage]
            if i - 1 in ends:
                dim_out = int(dim * config.dim_mul)
                heads = int(heads * config.head_mul)
                stage += 1
            q_stride = config.q_stride if i in pool_blocks else None
            blocks.append(MultiScaleBlock(dim, dim_out, heads, config.mlp_ratio, q_stride, window))
            dim = dim_out
        self.blocks = nn.ModuleList(blocks)
        self.stage_ends = ends

    def position_embedding(self, hw: tuple[int, int]) -> torch.Tensor:
        """1 x H x W x C: resized background embedding plus the tiled window embedding.

        At inference the result is kept until the parameters change (their version counters
        are part of the key): the bicubic resize costs more than a whole stage-4 block.
        """
        if torch.is_grad_enabled() or torch.compiler.is_compiling():  # training, capture
            return self._position_embedding(hw)
        key = (hw, self.pos_embed._version, self.pos_embed_window._version)
        key += (self.pos_embed.dtype, self.pos_embed.device, self.pos_embed.data_ptr())
        cached = getattr(self, "_pos_cache", None)
        if cached is None or cached[0] != key:
            cached = (key, self._position_embedding(hw))
            self._pos_cache = cached
        return cached[1]

    def _position_embedding(self, hw: tuple[int, int]) -> torch.Tensor:
        pos = F.interpolate(self.pos_embed, size=hw, mode="bicubic")
        win = self.pos_embed_window
        reps = (hw[0] // win.shape[-2], hw[1] // win.shape[-1])
        pos = pos + win.tile(1, 1, *reps)
        return pos.permute(0, 2, 3, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """B x 3 x S x S -> per-stage maps B x H_i x W_i x C_i, highest resolution first."""
        x = self.patch_embed(x)
        x = x + self.position_embedding((x.shape[1], x.shape[2]))
        outputs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.stage_ends:
                outputs.append(x)
        return outputs
