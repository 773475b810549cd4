"""Unmasked softmax attention on oneDNN's matrix products for float32 on the CPU.

PyTorch's fused CPU attention (``F.scaled_dot_product_attention``) computes its tiles with MKL's
``sgemm``, which on AMD processors runs a 256-bit code path (see :mod:`.linear`). For long
sequences without a mask (a ViT's global blocks, SAM 3's fusion encoder) :func:`attention`
computes ``softmax(q k^T / sqrt(D)) v`` with oneDNN's products instead, a block of query rows at
a time so the block's scores (rows x keys) stay in cache: the same function, float32 sums in
another order. Everything else (masks, other dtypes and devices, autograd) goes to
``F.scaled_dot_product_attention``.

Shapes: ... x N x D queries, ... x M x D keys and values (the same leading dims).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .linear import linear, uses_onednn

ROWS = 256  # query rows per block when there are more than WHOLE: 256 x 5184 scores, 5.3 MB
WHOLE = 1024  # up to this many queries (a 24 x 24 window: 576) are one block
LONG_KEYS = 1024
"""Keys from which a window-free attention (a ViT's global block, SAM 3's fusion encoder) is
worth routing to :func:`attention` rather than the fused kernel; shorter ones stay fused."""


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``softmax(q k^T / sqrt(D)) v`` over the last two dims; ... x N x D."""
    if not uses_onednn(q, k) or q.shape[:-2] != k.shape[:-2] or v.shape[:-2] != k.shape[:-2]:
        return F.scaled_dot_product_attention(q, k, v)
    n = q.shape[-2]
    return attend_rows(q * (1.0 / math.sqrt(q.shape[-1])), k, v, n if n <= WHOLE else ROWS)


def attend_rows(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rows: int) -> torch.Tensor:
    """``softmax(q k^T) v`` for pre-scaled ... x N x D queries, ... x M x D keys and ... x M x Dv
    values (the same leading dims, views allowed), ``rows`` queries at a time, on oneDNN's
    products (the caller checks :func:`~.linear.uses_onednn`). ... x N x Dv."""
    lead, (n, d) = q.shape[:-2], q.shape[-2:]
    # dense copies: the operands are often permuted or expanded views
    queries = q.reshape(-1, n, d).contiguous()
    keys = k.reshape(-1, k.shape[-2], d).contiguous()
    values_t = v.reshape(-1, v.shape[-2], v.shape[-1]).transpose(1, 2).contiguous()
    out = q.new_empty(queries.shape[0], n, v.shape[-1])
    for g in range(queries.shape[0]):
        for r in range(0, n, rows):
            scores = linear(queries[g, r : r + rows], keys[g])
            out[g, r : r + rows] = linear(torch.softmax(scores, dim=-1), values_t[g])
    return out.view(*lead, n, v.shape[-1])
