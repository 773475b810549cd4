"""The fusion encoder: the stride-14 image tokens attend to each other and to the prompt.

Each pre-norm layer: self-attention over the image tokens (their sine positions added to queries
and keys), cross-attention from the image tokens to the prompt tokens (text and exemplars;
padding masked; named ``cross_attn_image`` in the checkpoint), and a ReLU MLP.

The first layer's self-attention sees only the image, so :meth:`FusionEncoder.prepare` computes
it once per image; every prompt then starts from its output.

Shapes: B prompts, L = h*w image tokens, P prompt tokens, C channels.
"""

from __future__ import annotations

import torch
from torch import nn

from ..blocks.linear import Linear, linear
from .attention import Attention, key_mask
from .config import TransformerConfig


class FusionLayer(nn.Module):
    """Image self-attention, image-to-prompt cross-attention, MLP."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        dim = config.dim
        self.self_attn = Attention(dim, config.heads)
        self.cross_attn_image = Attention(dim, config.heads)
        self.linear1 = Linear(dim, config.mlp_dim)
        self.linear2 = Linear(config.mlp_dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)

    def self_attention(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """``x + self_attn(norm1(x) + pos, norm1(x) + pos, norm1(x))``: B x L x C."""
        y = self.norm1(x)
        keyed = y + pos
        return x + self.self_attn(keyed, keyed, y)

    def prompt_attention(
        self, x: torch.Tensor, prompt: torch.Tensor, valid: torch.Tensor | None
    ) -> torch.Tensor:
        """Cross-attention to the prompt, then the MLP: B x L x C."""
        x = x + self.cross_attn_image(self.norm2(x), prompt, prompt, key_mask(valid))
        fc1 = self.linear1
        return x + self.linear2(linear(self.norm3(x), fc1.weight, fc1.bias, "relu"))

    def forward(
        self,
        x: torch.Tensor,
        pos: torch.Tensor,
        prompt: torch.Tensor,
        valid: torch.Tensor | None,
    ) -> torch.Tensor:
        return self.prompt_attention(self.self_attention(x, pos), prompt, valid)


class FusionEncoder(nn.Module):
    """``layers``: the stack; no final norm."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(FusionLayer(config) for _ in range(config.depth))

    def prepare(self, image: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """The prompt-independent start: the first layer's self-attention, 1 x L x C."""
        return self.layers[0].self_attention(image, pos)

    def forward(
        self,
        prepared: torch.Tensor,
        pos: torch.Tensor,
        prompt: torch.Tensor,
        valid: torch.Tensor | None,
    ) -> torch.Tensor:
        """Fuse B prompts (B x P x C, valid B x P) into the image tokens: B x L x C.

        Args:
            prepared: 1 x L x C output of :meth:`prepare`.
            pos: 1 x L x C sine positions of the image tokens.
        """
        b = prompt.shape[0]
        x = self.layers[0].prompt_attention(prepared.expand(b, -1, -1), prompt, valid)
        for layer in self.layers[1:]:
            x = layer(x, pos, prompt, valid)
        return x
