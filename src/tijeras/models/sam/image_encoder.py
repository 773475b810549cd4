"""SAM's ViT image encoder: patch embedding, windowed / global blocks with decomposed relative
positions, and a convolutional neck down to the prompt embedding width.

Shapes: B images, H x W patches (64 x 64 for a 1024 input), C channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..blocks.attention import LONG_KEYS, block_rows
from ..blocks.common import LayerNorm2d, MLPBlock
from ..blocks.linear import Linear, linear, uses_onednn
from .config import ViTConfig

# Largest attention bias computed at once (elements); queries are processed in row chunks so the
# bias of a global block never needs the full L x L x heads tensor.
_MAX_BIAS_ELEMENTS = 48 * 1024 * 1024


def relative_position_table(q_size: int, k_size: int, rel_pos: torch.Tensor) -> torch.Tensor:
    """Relative-position embeddings for every (query, key) offset along one axis.

    Args:
        q_size: number of query positions along the axis.
        k_size: number of key positions along the axis.
        rel_pos: (L x C) learned embeddings; resampled linearly when L != 2*max(q,k)-1.

    Returns:
        q_size x k_size x C.
    """
    length = 2 * max(q_size, k_size) - 1
    if rel_pos.shape[0] != length:
        resampled = F.interpolate(rel_pos.t().unsqueeze(0).float(), size=length, mode="linear")
        rel_pos = resampled[0].t().to(rel_pos.dtype)
    q_scale = max(k_size / q_size, 1.0)
    k_scale = max(q_size / k_size, 1.0)
    q_coords = torch.arange(q_size, device=rel_pos.device)[:, None] * q_scale
    k_coords = torch.arange(k_size, device=rel_pos.device)[None, :] * k_scale
    offsets = (q_coords - k_coords) + (k_size - 1) * k_scale
    return rel_pos[offsets.long()]


class Attention(nn.Module):
    """Multi-head self-attention with decomposed relative positions, via SDPA."""

    def __init__(self, dim: int, num_heads: int, input_size: tuple[int, int]) -> None:
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.qkv = Linear(dim, dim * 3, bias=True)
        self.proj = Linear(dim, dim)
        self.rel_pos_h = nn.Parameter(torch.zeros(2 * input_size[0] - 1, head_dim))
        self.rel_pos_w = nn.Parameter(torch.zeros(2 * input_size[1] - 1, head_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: B x H x W x C -> B x H x W x C."""
        return self.proj(self.attend_qkv(self.qkv(x)))

    def attend_qkv(self, qkv: torch.Tensor) -> torch.Tensor:
        """Attention from projected B x H x W x 3C queries/keys/values -> B x H x W x C
        (before the output projection)."""
        b, h, w, c3 = qkv.shape
        c = c3 // 3
        qkv = qkv.reshape(b, h * w, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each B x heads x HW x hd
        rel_h = relative_position_table(h, h, self.rel_pos_h).to(q.dtype)  # h x h x hd
        rel_w = relative_position_table(w, w, self.rel_pos_w).to(q.dtype)  # w x w x hd
        rows = max(1, min(h, _MAX_BIAS_ELEMENTS // max(1, b * self.num_heads * w * h * w)))
        if rows >= h:
            out = self._attend(q, k, v, rel_h, rel_w, (h, w))
        else:
            chunks = []
            for r0 in range(0, h, rows):
                r1 = min(h, r0 + rows)
                chunks.append(
                    self._attend(q[:, :, r0 * w : r1 * w], k, v, rel_h[r0:r1], rel_w, (h, w))
                )
            out = torch.cat(chunks, dim=2)
        return out.transpose(1, 2).reshape(b, h, w, c)

    @staticmethod
    def _attend(
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        rel_h: torch.Tensor,
        rel_w: torch.Tensor,
        key_hw: tuple[int, int],
    ) -> torch.Tensor:
        """Attention of the query rows covered by ``rel_h`` (rows x kh x hd) to all keys."""
        b, heads, n, hd = q.shape
        kh, kw = key_hw
        rows = rel_h.shape[0]
        qr = q.reshape(b * heads, rows, kw, hd)
        bias_h = torch.einsum("bhwc,hkc->bhwk", qr, rel_h)  # (bH) x rows x qw x kh
        bias_w = torch.einsum("bhwc,wkc->bhwk", qr, rel_w)  # (bH) x rows x qw x kw
        if _unfused_attention(q, k.shape[2]):
            return _attend_unfused(q, k, v, bias_h, bias_w)
        # Written straight into a contiguous buffer: the broadcast sum is the largest tensor of
        # a global block, and a layout-following add would need a second full copy.
        training = torch.is_grad_enabled() and (bias_h.requires_grad or bias_w.requires_grad)
        if training or torch.compiler.is_compiling():
            # Training (e.g. LoRA): out= does not support autograd; graph capture (compile,
            # export) rewrites out= into a fresh tensor whose layout the view cannot follow.
            bias = (bias_h.unsqueeze(-1) + bias_w.unsqueeze(-2)).contiguous()
        else:
            bias = q.new_empty((b * heads, rows, kw, kh, kw))
            torch.add(bias_h.unsqueeze(-1), bias_w.unsqueeze(-2), out=bias)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias.view(b, heads, n, kh * kw))


def _unfused_attention(q: torch.Tensor, keys: int) -> bool:
    """Attention as matrix products and an in-place softmax, instead of the fused kernel.

    bfloat16 / float16 on the CPU: PyTorch's fused CPU attention kernel runs half-precision
    inputs no faster than float32 (it does not use the AVX-512 BF16 dot products), while its
    batched matrix products do: a global ViT-B block's attention takes 0.6x the time this way.
    The scores are rounded to the input dtype before the softmax, as under ``torch.autocast``.

    float32 on the CPU over many keys (the global blocks): the fused kernel's tiles run on
    MKL, whose AMD code path has half oneDNN's rate (:mod:`..blocks.linear`); the products go
    to oneDNN, one head at a time.
    """
    if q.device.type != "cpu" or torch.is_grad_enabled() or torch.compiler.is_compiling():
        return False
    if q.dtype in (torch.bfloat16, torch.float16):
        return True
    return keys >= LONG_KEYS and uses_onednn(q, q)


def _attend_unfused(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    bias_h: torch.Tensor,
    bias_w: torch.Tensor,
) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + bias) v with the decomposed bias added in place to the scores.

    q: B x heads x (rows*kw) x hd; k, v: B x heads x (kh*kw) x hd; bias_h: (B*heads) x rows x
    kw x kh, bias_w: (B*heads) x rows x kw x kw.
    """
    b, heads, n, hd = q.shape
    rows, kw, kh = bias_h.shape[1], bias_h.shape[2], bias_h.shape[3]
    queries = q.reshape(b * heads, n, hd) * hd**-0.5
    if q.dtype == torch.float32:
        keys = k.reshape(b * heads, -1, hd).contiguous()
        values_t = v.reshape(b * heads, -1, hd).transpose(1, 2).contiguous()
        out = q.new_empty(b * heads, n, hd)
        step = max(1, block_rows(kh * kw) // kw)  # image rows per block of queries
        for g in range(b * heads):
            for r0 in range(0, rows, step):
                r1 = min(rows, r0 + step)
                scores = linear(queries[g, r0 * kw : r1 * kw], keys[g])
                grid = scores.view(r1 - r0, kw, kh, kw)
                grid += bias_h[g, r0:r1].unsqueeze(-1)
                grid += bias_w[g, r0:r1].unsqueeze(-2)
                torch.softmax(scores, dim=-1, out=scores)  # in place, as in blocks.attention
                out[g, r0 * kw : r1 * kw] = linear(scores, values_t[g])
        return out.view(b, heads, n, hd)
    keys = k.reshape(b * heads, -1, hd)
    bias_in_product = kh + kw <= hd
    if bias_in_product:
        # Windows: the bias rides in the product. Each query gains its kh + kw bias terms as
        # extra channels and each key the one-hot of its row and column, so q'.k' is
        # q.k + bias_h[row] + bias_w[col] in one batched product, accumulated in float32 and
        # rounded once. Half-precision broadcast additions on the CPU are slow (two of them
        # took 3x the window's products); 28 more channels on 64 cost less than they do.
        rows_of = torch.eye(kh, dtype=q.dtype, device=q.device).repeat_interleave(kw, dim=0)
        cols_of = torch.eye(kw, dtype=q.dtype, device=q.device).repeat(kh, 1)
        g = b * heads
        queries = torch.cat([queries, bias_h.reshape(g, n, kh), bias_w.reshape(g, n, kw)], -1)
        keys = torch.cat([keys, rows_of.expand(g, -1, -1), cols_of.expand(g, -1, -1)], -1)
    scores = torch.bmm(queries, keys.transpose(1, 2))
    if not bias_in_product:  # global blocks: the bias added to the scores
        grid = scores.view(b * heads, rows, kw, kh, kw)
        grid += bias_h.unsqueeze(-1)
        grid += bias_w.unsqueeze(-2)
    torch.softmax(scores, dim=-1, out=scores)
    return torch.bmm(scores, v.reshape(b * heads, -1, hd)).view(b, heads, n, hd)


def window_partition(
    x: torch.Tensor, window: int, fill: torch.Tensor | None = None
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad B x H x W x C to multiples of ``window`` and split it into windows.

    The padding is zero, or the C-vector ``fill`` (the value a zero token takes after a linear
    layer, so padding can be added after the projection instead of before it).

    Returns:
        (B * nWin) x window x window x C, and the padded (H, W).
    """
    b, h, w, c = x.shape
    pad_h = (window - h % window) % window
    pad_w = (window - w % window) % window
    if pad_h or pad_w:
        if fill is None:
            x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
        else:
            padded = x.new_empty((b, h + pad_h, w + pad_w, c))
            padded[:, :h, :w] = x
            padded[:, h:] = fill
            padded[:, :h, w:] = fill
            x = padded
    hp, wp = h + pad_h, w + pad_w
    x = x.view(b, hp // window, window, wp // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window, window, c), (hp, wp)


def window_unpartition(
    windows: torch.Tensor, window: int, padded_hw: tuple[int, int], hw: tuple[int, int]
) -> torch.Tensor:
    """Inverse of :func:`window_partition`: back to B x H x W x C without the padding."""
    hp, wp = padded_hw
    h, w = hw
    b = windows.shape[0] // ((hp // window) * (wp // window))
    x = windows.view(b, hp // window, wp // window, window, window, -1)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, -1)
    if hp > h or wp > w:
        x = x[:, :h, :w, :]
    return x


class Block(nn.Module):
    """Pre-norm transformer block, windowed when ``window_size > 0``."""

    def __init__(
        self, dim: int, num_heads: int, mlp_ratio: float, window_size: int, grid: int
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        size = (window_size, window_size) if window_size > 0 else (grid, grid)
        self.attn = Attention(dim, num_heads, size)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLPBlock(dim, int(dim * mlp_ratio))
        self.window_size = window_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(x)
        if self.window_size > 0:
            # Padding tokens are zero after the norm, so their projections are the qkv bias:
            # project the real tokens only and pad with the bias.
            hw = (x.shape[1], x.shape[2])
            qkv = self.attn.qkv(y)
            windows, padded = window_partition(qkv, self.window_size, fill=self.attn.qkv.bias)
            y = self.attn.attend_qkv(windows)
            y = self.attn.proj(window_unpartition(y, self.window_size, padded, hw))
        else:
            y = self.attn(y)
        x = x + y
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    """Non-overlapping patches to channels-last tokens."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


class ImageEncoderViT(nn.Module):
    """B x 3 x S x S normalised, padded images -> B x out_chans x S/16 x S/16 embeddings."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.img_size = config.img_size
        grid = config.img_size // config.patch_size
        self.patch_embed = PatchEmbed(config.patch_size, 3, config.embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, grid, grid, config.embed_dim))
        self.blocks = nn.ModuleList(
            Block(
                config.embed_dim,
                config.num_heads,
                config.mlp_ratio,
                0 if i in config.global_attn_indexes else config.window_size,
                grid,
            )
            for i in range(config.depth)
        )
        self.neck = nn.Sequential(
            nn.Conv2d(config.embed_dim, config.out_chans, kernel_size=1, bias=False),
            LayerNorm2d(config.out_chans),
            nn.Conv2d(config.out_chans, config.out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(config.out_chans),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.neck(x.permute(0, 3, 1, 2))
