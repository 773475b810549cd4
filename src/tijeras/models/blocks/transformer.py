"""The two-way transformer of the mask decoder: prompt tokens and image tokens attend to each
other in both directions.

Shapes: B prompts, T tokens per prompt, L = h*w image tokens, C channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import MLPBlock
from .linear import Linear


class Attention(nn.Module):
    """Multi-head attention with an optional down-projection of the internal width."""

    def __init__(self, embedding_dim: int, num_heads: int, downsample_rate: int = 1) -> None:
        super().__init__()
        self.internal_dim = embedding_dim // downsample_rate
        self.num_heads = num_heads
        if self.internal_dim % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide {self.internal_dim}")
        self.q_proj = Linear(embedding_dim, self.internal_dim)
        self.k_proj = Linear(embedding_dim, self.internal_dim)
        self.v_proj = Linear(embedding_dim, self.internal_dim)
        self.out_proj = Linear(self.internal_dim, embedding_dim)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """... x N x D -> ... x heads x N x D/heads."""
        *lead, n, d = x.shape
        return x.reshape(*lead, n, self.num_heads, d // self.num_heads).transpose(-3, -2)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Attention of already projected, head-split inputs, then the output projection.

        Leading dimensions broadcast, so image keys computed once can serve B prompts.
        """
        lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
        q, k, v = (
            q.expand(*lead, *q.shape[-2:]),
            k.expand(*lead, *k.shape[-2:]),
            v.expand(*lead, *v.shape[-2:]),
        )
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(-3, -2).flatten(-2)
        return self.out_proj(out)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q = self.split_heads(self.q_proj(q))
        k = self.split_heads(self.k_proj(k))
        v = self.split_heads(self.v_proj(v))
        return self.attend(q, k, v)


class TwoWayAttentionBlock(nn.Module):
    """Token self-attention, token-to-image attention, token MLP, image-to-token attention."""

    def __init__(
        self,
        embedding_dim: int,
        num_heads: int,
        mlp_dim: int,
        attention_downsample_rate: int,
        skip_first_layer_pe: bool,
    ) -> None:
        super().__init__()
        self.self_attn = Attention(embedding_dim, num_heads)
        self.norm1 = nn.LayerNorm(embedding_dim)
        self.cross_attn_token_to_image = Attention(
            embedding_dim, num_heads, downsample_rate=attention_downsample_rate
        )
        self.norm2 = nn.LayerNorm(embedding_dim)
        self.mlp = MLPBlock(embedding_dim, mlp_dim, nn.ReLU)
        self.norm3 = nn.LayerNorm(embedding_dim)
        self.norm4 = nn.LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = Attention(
            embedding_dim, num_heads, downsample_rate=attention_downsample_rate
        )
        self.skip_first_layer_pe = skip_first_layer_pe

    def token_self_attention(self, queries: torch.Tensor, query_pe: torch.Tensor) -> torch.Tensor:
        """Self-attention among the prompt tokens (without positions in the first layer)."""
        if self.skip_first_layer_pe:
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        return self.norm1(queries)

    def update_tokens(
        self,
        queries: torch.Tensor,
        query_pe: torch.Tensor,
        image_k: torch.Tensor,
        image_v: torch.Tensor,
    ) -> torch.Tensor:
        """The token half of the block, with image keys/values already projected and head-split.

        ``image_k`` / ``image_v`` may carry a leading batch of 1 shared by every prompt.
        """
        queries = self.token_self_attention(queries, query_pe)
        attn = self.cross_attn_token_to_image
        q = attn.split_heads(attn.q_proj(queries + query_pe))
        queries = self.norm2(queries + attn.attend(q, image_k, image_v))
        return self.norm3(queries + self.mlp(queries))

    def update_image(
        self,
        keys: torch.Tensor,
        queries: torch.Tensor,
        query_pe: torch.Tensor,
        image_q: torch.Tensor,
    ) -> torch.Tensor:
        """The image half: image tokens attend to the updated prompt tokens."""
        attn = self.cross_attn_image_to_token
        k = attn.split_heads(attn.k_proj(queries + query_pe))
        v = attn.split_heads(attn.v_proj(queries))
        return self.norm4(keys + attn.attend(image_q, k, v))

    def forward(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        query_pe: torch.Tensor,
        key_pe: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        keyed = keys + key_pe
        t2i = self.cross_attn_token_to_image
        image_k = t2i.split_heads(t2i.k_proj(keyed))
        image_v = t2i.split_heads(t2i.v_proj(keys))
        queries = self.update_tokens(queries, query_pe, image_k, image_v)
        i2t = self.cross_attn_image_to_token
        image_q = i2t.split_heads(i2t.q_proj(keyed))
        return queries, self.update_image(keys, queries, query_pe, image_q)


class TwoWayTransformer(nn.Module):
    """A stack of two-way blocks and a final token-to-image attention."""

    def __init__(
        self,
        depth: int,
        embedding_dim: int,
        num_heads: int,
        mlp_dim: int,
        attention_downsample_rate: int = 2,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(
                embedding_dim, num_heads, mlp_dim, attention_downsample_rate, i == 0
            )
            for i in range(depth)
        )
        self.final_attn_token_to_image = Attention(
            embedding_dim, num_heads, downsample_rate=attention_downsample_rate
        )
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def forward(
        self, image_embedding: torch.Tensor, image_pe: torch.Tensor, point_embedding: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """B x C x h x w image, 1|B x C x h x w positions, B x T x C tokens.

        Returns:
            the updated tokens (B x T x C) and image tokens (B x L x C).
        """
        keys = image_embedding.flatten(2).transpose(1, 2)
        key_pe = image_pe.flatten(2).transpose(1, 2)
        queries = point_embedding
        for layer in self.layers:
            queries, keys = layer(queries, keys, point_embedding, key_pe)
        return self.final_tokens(queries, keys, point_embedding, key_pe), keys

    def final_tokens(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        query_pe: torch.Tensor,
        key_pe: torch.Tensor,
    ) -> torch.Tensor:
        """The last token-to-image attention and norm."""
        out = self.final_attn_token_to_image(queries + query_pe, keys + key_pe, keys)
        return self.norm_final_attn(queries + out)
