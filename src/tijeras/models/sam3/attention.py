"""Attention and small layers shared by SAM 3's prompt-side transformers.

:class:`Attention` keeps the parameter layout of ``torch.nn.MultiheadAttention`` (one
``in_proj_weight`` holding the query, key and value projections, then ``out_proj``), which is how
the official checkpoint stores every attention of the geometry encoder, the fusion encoder, the
decoder and the mask head; it runs on PyTorch's fused scaled-dot-product attention.

Shapes: B batch, Q queries, K keys, C channels, H heads.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from ..blocks.attention import LONG_KEYS, attention
from ..blocks.linear import Linear, linear


class Attention(nn.Module):
    """Multi-head attention with separate query, key and value inputs.

    Args:
        dim: channels C of the inputs and the output.
        heads: number of heads (C must divide by it).
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention width {dim} does not divide into {heads} heads")
        self.dim = dim
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def project(self, x: torch.Tensor, which: int) -> torch.Tensor:
        """The query (0), key (1) or value (2) projection of B x N x C -> B x H x N x D."""
        d = self.dim
        w = self.in_proj_weight[which * d : (which + 1) * d]
        b = self.in_proj_bias[which * d : (which + 1) * d]
        y = linear(x, w, b)
        return y.unflatten(-1, (self.heads, d // self.heads)).transpose(1, 2)

    def attend(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Projected heads B x H x Q x D (and keys/values B x H x K x D) -> B x Q x C.

        Attention over many keys without a boolean mask (the fusion encoder's self-attention
        over the image tokens, the decoder's biased cross-attention to them) runs on oneDNN's
        products in float32 on the CPU (:mod:`..blocks.attention`)."""
        if k.shape[-2] >= LONG_KEYS and (mask is None or mask.is_floating_point()):
            out = attention(q, k, v, mask)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out_proj(out.transpose(1, 2).flatten(2))

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attend B x Q x C queries to B x K x C keys/values.

        Args:
            query, key, value: B x Q x C, B x K x C, B x K x C (batch 1 broadcasts).
            mask: None, a bool mask (True: attend) or an additive float bias, broadcastable to
                B x H x Q x K (see :func:`key_mask`).
        """
        q = self.project(query, 0)
        k = self.project(key, 1)
        v = self.project(value, 2)
        b = max(q.shape[0], k.shape[0])
        if q.shape[0] != b:
            q = q.expand(b, -1, -1, -1)
        if k.shape[0] != b:
            k, v = k.expand(b, -1, -1, -1), v.expand(b, -1, -1, -1)
        return self.attend(q, k, v, mask)


def key_mask(valid: torch.Tensor | None) -> torch.Tensor | None:
    """B x K valid-key flags (True: a real token) -> a B x 1 x 1 x K attention mask."""
    return None if valid is None else valid[:, None, None, :]


class MLP(nn.Module):
    """``num_layers`` linear layers with ReLU between them (``layers.0``, ``layers.1``...)."""

    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(Linear(a, b) for a, b in itertools.pairwise(dims))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = linear(x, layer.weight, layer.bias, "relu" if i < last else "none")
        return x
