"""SAM 3's text encoder: a causal CLIP text transformer and its projection to the model width.

Token and position embeddings, pre-norm blocks (attention with a causal mask, GELU MLP), a final
LayerNorm, then ``resizer`` (a linear map to the 256-channel prompt width). Every token's output
is a prompt token (the model attends over all of them; there is no pooling). Because the
attention is causal, a token's output depends only on the tokens before it, so the padding after
the end-of-text token never changes the real tokens: :meth:`TextEncoder.forward` encodes only the
longest phrase's tokens of the batch.

Names follow the checkpoint (``encoder.transformer.resblocks.<i>.attn.in_proj_weight``...).

Shapes: B phrases, T tokens (at most the context length), W text width, C prompt width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..blocks.linear import Linear, linear
from .config import TextConfig


class TextAttention(nn.Module):
    """Causal self-attention with a fused ``in_proj`` (MultiheadAttention's layout)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, w = x.shape
        qkv = linear(x, self.in_proj_weight, self.in_proj_bias)
        q, k, v = qkv.view(b, t, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out_proj(out.transpose(1, 2).reshape(b, t, w))


class TextMlp(nn.Module):
    """``c_proj(gelu(c_fc(x)))``."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.c_fc = Linear(width, hidden)
        self.c_proj = Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(linear(x, self.c_fc.weight, self.c_fc.bias, "gelu"))


class ResidualBlock(nn.Module):
    """``x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))``."""

    def __init__(self, width: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.attn = TextAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = TextMlp(width, hidden)
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class TextBlocks(nn.Module):
    """The stack of blocks (``resblocks``)."""

    def __init__(self, config: TextConfig) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(
            ResidualBlock(config.width, config.heads, config.mlp_dim) for _ in range(config.depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x)
        return x


class TextTransformer(nn.Module):
    """Token ids -> B x T x W final-normed token features."""

    def __init__(self, config: TextConfig) -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(config.vocab_size, config.width)
        self.positional_embedding = nn.Parameter(torch.zeros(config.context_length, config.width))
        self.transformer = TextBlocks(config)
        self.ln_final = nn.LayerNorm(config.width)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        t = ids.shape[1]
        x = self.token_embedding(ids) + self.positional_embedding[:t]
        return self.ln_final(self.transformer(x))


class TextEncoder(nn.Module):
    """The text transformer (``encoder``) and the projection to the prompt width (``resizer``)."""

    def __init__(self, config: TextConfig, dim: int) -> None:
        super().__init__()
        self.config = config
        self.encoder = TextTransformer(config)
        self.resizer = Linear(config.width, dim)

    def forward(self, ids: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode B tokenised phrases.

        Args:
            ids: B x T token ids (start token first, end token last, then padding).
            valid: B x T bool, True on the real tokens (start to end token).

        Returns:
            features B x T' x C and their valid flags B x T', where T' is the longest phrase's
            token count (the columns after it are padding for every phrase).
        """
        length = int(valid.sum(dim=1).max())
        ids, valid = ids[:, :length], valid[:, :length]
        return self.resizer(self.encoder(ids)), valid
