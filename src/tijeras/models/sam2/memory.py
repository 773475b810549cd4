"""The video modules of SAM 2: memory encoder and memory attention.

:class:`MemoryEncoder` turns a frame's features and its predicted mask into a 64-channel
memory; :class:`MemoryAttention` conditions a new frame's features on the memories of earlier
frames (rotary self-attention over the frame, cross-attention to the memories and to object
pointers, a feed-forward layer, four times). The parameters keep the checkpoint's names, so
official files load strictly; the image predictor does not run these modules.

Shapes: B objects (or frames), C = 256 feature channels, Cm = 64 memory channels,
L = h * w = 64 * 64 frame tokens, N memory tokens (F frames of L tokens, then P pointer tokens).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..blocks.attention import attend_rows, attention
from ..blocks.common import LayerNorm2d
from ..blocks.linear import Linear, linear, uses_onednn
from .config import MemoryConfig
from .neck import PositionEmbeddingSine
from .rope import RotaryTable, rotary_table, rotate


class MaskDownSampler(nn.Module):
    """Four stride-2 3x3 convolutions (x4 channels each, LayerNorm2d, GELU), then a 1x1."""

    def __init__(self, embed_dim: int = 256, stages: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        chans = 1
        for _ in range(stages):
            out = chans * 4
            layers += [nn.Conv2d(chans, out, 3, stride=2, padding=1), LayerNorm2d(out), nn.GELU()]
            chans = out
        layers.append(nn.Conv2d(chans, embed_dim, kernel_size=1))
        self.encoder = nn.Sequential(*layers)

    def forward(self, masks: torch.Tensor) -> torch.Tensor:
        """B x 1 x 1024 x 1024 -> B x C x 64 x 64."""
        return self.encoder(masks)


class CXBlock(nn.Module):
    """ConvNeXt block: depthwise 7x7, LayerNorm2d, pointwise MLP (x4), layer scale, residual."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = LayerNorm2d(dim)
        self.pwconv1 = Linear(dim, 4 * dim)
        self.pwconv2 = Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.dwconv(x)).permute(0, 2, 3, 1)
        hidden = linear(y, self.pwconv1.weight, self.pwconv1.bias, "gelu")
        y = self.gamma * self.pwconv2(hidden)
        return x + y.permute(0, 3, 1, 2)


class Fuser(nn.Module):
    """A stack of ConvNeXt blocks."""

    def __init__(self, dim: int, num_layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(CXBlock(dim) for _ in range(num_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class MemoryEncoder(nn.Module):
    """Frame features plus a downsampled mask, fused and projected to the memory width."""

    def __init__(self, config: MemoryConfig, dim: int = 256) -> None:
        super().__init__()
        self.mask_downsampler = MaskDownSampler(dim)
        self.pix_feat_proj = nn.Conv2d(dim, dim, kernel_size=1)
        self.fuser = Fuser(dim, config.fuser_layers)
        self.out_proj = nn.Conv2d(dim, config.mem_dim, kernel_size=1)
        self.position_encoding = PositionEmbeddingSine(config.mem_dim)

    def forward(
        self, pix_feat: torch.Tensor, masks: torch.Tensor, skip_mask_sigmoid: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """B x C x 64 x 64 features, B x 1 x 1024 x 1024 mask logits -> B x M x 64 x 64
        memory features and their 1 x M x 64 x 64 positional encoding."""
        if not skip_mask_sigmoid:
            masks = torch.sigmoid(masks)
        x = self.pix_feat_proj(pix_feat) + self.mask_downsampler(masks)
        x = self.out_proj(self.fuser(x))
        pos = self.position_encoding((x.shape[-2], x.shape[-1]), x.device).to(x.dtype)
        return x, pos


class MemoryProjection(nn.Module):
    """Query/key/value/output projections with keys and values of another width."""

    def __init__(self, dim: int, kv_dim: int, heads: int = 1) -> None:
        super().__init__()
        self.q_proj = Linear(dim, dim)
        self.k_proj = Linear(kv_dim, dim)
        self.v_proj = Linear(kv_dim, dim)
        self.out_proj = Linear(dim, dim)
        self.heads = heads

    def split(self, x: torch.Tensor) -> torch.Tensor:
        """B x T x C -> B x heads x T x C/heads."""
        return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)

    def merge(self, x: torch.Tensor) -> torch.Tensor:
        """B x heads x T x C/heads -> B x T x C."""
        return x.transpose(1, 2).flatten(2)

    def self_attention(self, x: torch.Tensor, table: RotaryTable) -> torch.Tensor:
        """Rotary self-attention of B x L x C tokens (queries and keys rotated, values not)."""
        q = rotate(self.split(self.q_proj(x)), table)
        k = rotate(self.split(self.k_proj(x)), table)
        v = self.split(self.v_proj(x))
        return self.out_proj(self.merge(attention(q, k, v)))

    def value_output(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The value and output projections as one map per head: heads x C x Cm, and its bias.

        ``out_proj(A @ v_proj(m)) = sum_h (A_h @ m) @ (Wo_h Wv_h)^T + (Wo bv + bo)`` since every
        row of an attention matrix sums to one: the attention then weighs the Cm-channel
        memories instead of their C-channel values.
        """
        wv = self.v_proj.weight.unflatten(0, (self.heads, -1))  # heads x C/h x Cm
        wo = self.out_proj.weight.unflatten(1, (self.heads, -1)).transpose(0, 1)  # h x C x C/h
        bias = self.out_proj.bias + self.out_proj.weight @ self.v_proj.bias
        return wo @ wv, bias

    def cross_attention(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        memory_pos: torch.Tensor,
        num_unrotated: int,
        table: RotaryTable,
    ) -> torch.Tensor:
        """Cross-attention of B x L x C frame tokens to B x N x Cm memory tokens.

        Keys are the projected memories plus their encodings; the first N - ``num_unrotated``
        keys (spatial memories, whole grids) are rotated by their grid position, the last
        ``num_unrotated`` (object pointers) are not. Values are the memories themselves.
        """
        q = rotate(self.split(self.q_proj(x)), table)
        k = self.split(self.k_proj(memory + memory_pos))
        n_rot = k.shape[-2] - num_unrotated
        if num_unrotated:
            keys = torch.empty(k.shape, dtype=k.dtype, device=k.device)
            keys[..., n_rot:, :] = k[..., n_rot:, :]
            rotate(k[..., :n_rot, :], table, out=keys[..., :n_rot, :])
            k = keys
        else:
            k = rotate(k, table)
        w_ov, bias = self.value_output()
        values = memory[:, None].expand(-1, self.heads, -1, -1)
        q = q * (1.0 / math.sqrt(q.shape[-1]))
        weighted = attend_in_chunks(q, k, values)  # B x h x L x Cm
        if self.heads > 1:
            out = torch.einsum("bhlm,hcm->blc", weighted, w_ov)
        else:
            out = weighted[:, 0] @ w_ov[0].transpose(0, 1)
        return out + bias


QUERY_CHUNK = 256
"""Queries whose attention rows are formed at once: 256 x 28,736 scores (29 MB) per object at
full memory. 512 rows ran the three-object cross-attention alone 4 % faster, but tracking three
objects no faster (4.48-4.59 s per frame against 4.46-4.52) with 320 MB more peak memory, close
to Meta's; 256 stays."""


def attend_in_chunks(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``softmax(q k^T) v`` for pre-scaled B x h x L x D queries, B x h x N x D keys and
    B x h x N x Dv values, a chunk of queries at a time.

    PyTorch's fused CPU attention needs values as wide as the keys; with the narrower memory
    values its general path materialises all L x N scores and scans them for masked rows.
    Chunking keeps the scores of ``QUERY_CHUNK`` queries only. In float32 on the CPU the
    products run on oneDNN (:mod:`..blocks.attention`).
    """
    length = q.shape[-2]
    if uses_onednn(q, k):
        return attend_rows(q, k, v, QUERY_CHUNK)
    if length <= QUERY_CHUNK:
        return torch.matmul(torch.softmax(torch.matmul(q, k.transpose(-1, -2)), dim=-1), v)
    kt = k.transpose(-1, -2)
    out = q.new_empty(*q.shape[:-1], v.shape[-1])
    for start in range(0, length, QUERY_CHUNK):
        scores = torch.matmul(q[..., start : start + QUERY_CHUNK, :], kt)
        out[..., start : start + QUERY_CHUNK, :] = torch.matmul(torch.softmax(scores, dim=-1), v)
    return out


class MemoryAttentionLayer(nn.Module):
    """Rotary self-attention, cross-attention to memories, a ReLU feed-forward (pre-norm)."""

    def __init__(self, dim: int, mem_dim: int, ffn_dim: int, heads: int = 1) -> None:
        super().__init__()
        self.self_attn = MemoryProjection(dim, dim, heads)
        self.cross_attn_image = MemoryProjection(dim, mem_dim, heads)
        self.linear1 = Linear(dim, ffn_dim)
        self.linear2 = Linear(ffn_dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)

    def attend_self(self, x: torch.Tensor, table: RotaryTable) -> torch.Tensor:
        return x + self.self_attn.self_attention(self.norm1(x), table)

    def attend_memory(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        memory_pos: torch.Tensor,
        num_unrotated: int,
        table: RotaryTable,
    ) -> torch.Tensor:
        y = self.cross_attn_image.cross_attention(
            self.norm2(x), memory, memory_pos, num_unrotated, table
        )
        x = x + y
        hidden = linear(self.norm3(x), self.linear1.weight, self.linear1.bias, "relu")
        return x + self.linear2(hidden)


class MemoryAttention(nn.Module):
    """Conditions frame features on memories of earlier frames and on object pointers."""

    def __init__(
        self, config: MemoryConfig, dim: int = 256, heads: int = 1, rope_theta: float = 10000.0
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            MemoryAttentionLayer(dim, config.mem_dim, config.attention_ffn_dim, heads)
            for _ in range(config.attention_layers)
        )
        self.norm = nn.LayerNorm(dim)
        self.heads = heads
        self.rope_theta = rope_theta
        self._tables: dict[tuple, RotaryTable] = {}

    def rotary(self, grid: tuple[int, int], like: torch.Tensor) -> RotaryTable:
        """The rotation table of a grid, kept per grid size, device and dtype."""
        key = (grid, like.device, like.dtype)
        table = self._tables.get(key)
        if table is None:
            dim = self.layers[0].self_attn.q_proj.out_features // self.heads
            table = rotary_table(dim, grid, self.rope_theta, device=like.device, dtype=like.dtype)
            self._tables[key] = table
        return table

    def forward(
        self,
        curr: torch.Tensor,
        curr_pos: torch.Tensor,
        memory: torch.Tensor,
        memory_pos: torch.Tensor,
        num_obj_ptr_tokens: int = 0,
        grid: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """Frame tokens conditioned on memories.

        Args:
            curr: 1 x L x C or B x L x C frame features (one frame shared by B objects, or one
                per object).
            curr_pos: 1 x L x C (or B x L x C) sine encoding of the frame grid.
            memory: B x N x Cm memory tokens: F spatial memories of L tokens each, then
                ``num_obj_ptr_tokens`` object-pointer tokens.
            memory_pos: B x N x Cm encodings of the memory tokens (spatial + temporal).
            num_obj_ptr_tokens: how many trailing memory tokens are pointers (no RoPE).
            grid: (h, w) of the frame (default: square).

        Returns:
            B x L x C conditioned features.

        When ``curr`` has one row and ``memory`` B, the first self-attention (which sees only
        the frame) runs once for all objects.
        """
        n = curr.shape[1]
        if grid is None:
            side = math.isqrt(n)
            if side * side != n:
                raise ValueError(f"{n} frame tokens are not a square grid; pass grid=(h, w)")
            grid = (side, side)
        table = self.rotary(grid, curr)
        x = curr + 0.1 * curr_pos
        b = memory.shape[0]
        for i, layer in enumerate(self.layers):
            x = layer.attend_self(x, table)
            if x.shape[0] != b:
                x = x.expand(b, -1, -1)
            x = layer.attend_memory(x, memory, memory_pos, num_obj_ptr_tokens, table)
        return self.norm(x)
