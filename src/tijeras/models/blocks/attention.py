"""Unmasked softmax attention on oneDNN's matrix products for float32 on the CPU.

PyTorch's fused CPU attention (``F.scaled_dot_product_attention``) computes its tiles with MKL's
``sgemm``, which on AMD processors runs a 256-bit code path (see :mod:`.linear`). For long
sequences without a mask (a ViT's global blocks, SAM 3's fusion encoder) :func:`attention`
computes ``softmax(q k^T / sqrt(D) + bias) v`` with oneDNN's products instead, a block of query
rows at a time so the block's scores (rows x keys, :data:`BLOCK_SCORES`) stay in cache: the
same function, float32 sums in another order. An additive float bias (SAM 3's box
relative-position bias) is added to each block's scores. Everything else (boolean masks, other
dtypes and devices, autograd) goes to ``F.scaled_dot_product_attention``.

Shapes: ... x N x D queries, ... x M x D keys and values (the same leading dims).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .linear import linear, uses_onednn

BLOCK_SCORES = 1 << 21
"""Scores formed at once when the queries are split (2M floats, 8 MB: a quarter of the L3 cache
of the machine of ``docs/benchmarks.md``): 512 query rows over 4096 keys, 384 over 5184. Over
4096 tokens, 12 heads of 64 channels (ViT-B's global shape) took 173 ms in 512-row blocks
against 191 ms in 256-row ones and 4 heads of 96 (Hiera-T's) 74.8 against 82.2 ms; 8 heads of
32 over 5184 tokens (SAM 3's fusion encoder) 114 ms in 384-row blocks against 123 ms; 1024
rows were slower again in each."""
WHOLE = 1024  # up to this many queries (a 24 x 24 window: 576) are one block
LONG_KEYS = 1024
"""Keys from which a window-free attention (a ViT's global block, SAM 3's fusion encoder) is
worth routing to :func:`attention` rather than the fused kernel; shorter ones stay fused."""


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """``softmax(q k^T / sqrt(D) + bias) v`` over the last two dims; ... x N x D. ``bias``: a
    float tensor broadcastable to ... x N x M, or None."""
    if (
        not uses_onednn(q, k)
        or q.shape[:-2] != k.shape[:-2]
        or v.shape[:-2] != k.shape[:-2]
        or (bias is not None and (bias.dtype != q.dtype or bias.requires_grad))
    ):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    n = q.shape[-2]
    scaled = q * (1.0 / math.sqrt(q.shape[-1]))
    return attend_rows(scaled, k, v, n if n <= WHOLE else block_rows(k.shape[-2]), bias)


def block_rows(keys: int) -> int:
    """Query rows per block over ``keys`` keys: :data:`BLOCK_SCORES` scores, a multiple of 128
    rows (at least 128)."""
    return max(128, BLOCK_SCORES // max(1, keys) // 128 * 128)


def attend_rows(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    rows: int,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """``softmax(q k^T + bias) v`` for pre-scaled ... x N x D queries, ... x M x D keys and
    ... x M x Dv values (the same leading dims, views allowed) and an optional bias
    broadcastable to ... x N x M, ``rows`` queries at a time, on oneDNN's products (the caller
    checks :func:`~.linear.uses_onednn`). ... x N x Dv."""
    lead, (n, d), m = q.shape[:-2], q.shape[-2:], k.shape[-2]
    # dense copies: the operands are often permuted or expanded views
    queries = q.reshape(-1, n, d).contiguous()
    keys = k.reshape(-1, m, d).contiguous()
    values_t = v.reshape(-1, m, v.shape[-1]).transpose(1, 2).contiguous()
    if bias is not None:
        bias = bias.expand(*lead, n, m).reshape(-1, n, m)  # a view when it is full size
    out = q.new_empty(queries.shape[0], n, v.shape[-1])
    for g in range(queries.shape[0]):
        for r in range(0, n, rows):
            scores = linear(queries[g, r : r + rows], keys[g])
            if bias is not None:
                scores += bias[g, r : r + rows]
            # in place: the block's scores and probabilities share one buffer in cache
            torch.softmax(scores, dim=-1, out=scores)
            out[g, r : r + rows] = linear(scores, values_t[g])
    return out.view(*lead, n, v.shape[-1])
