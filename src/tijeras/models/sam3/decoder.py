"""The DETR-style decoder: object queries with a presence token and iterative box refinement,
and the dot-product score of each query against the prompt.

Q learned queries, each with a learned reference box, and one presence token go through post-norm
layers: self-attention (the presence token first; each query's position is an MLP of its box's
sine encoding), cross-attention to the prompt tokens (``ca_text``), cross-attention to the fused
image tokens with a box relative-position bias (an MLP of the log-scaled distances between each
image row and column and the query box's edges, per head), and a ReLU MLP. After every layer the
box head refines each box in logit space and the presence head reads the presence token.

The outputs are the last layer's: normed query features, boxes and presence logit. A query's
score is ``sigmoid(logit) * sigmoid(presence)``, where the logit is the scaled dot product of
the projected query with the projected, mean-pooled prompt (:class:`DotProductScoring`).

Shapes: B prompts, Q queries, P prompt tokens, L = h*w image tokens, C channels, H heads.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..blocks.linear import Linear, linear
from .attention import MLP, Attention, key_mask
from .config import DecoderConfig
from .neck import sine_features


def inverse_sigmoid(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """``log(x / (1 - x))`` with both clamped to at least ``eps``."""
    x = x.clamp(0, 1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


def cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """... x 4 (centre x, centre y, width, height) -> ... x 4 (x0, y0, x1, y1)."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)


def box_sine(boxes: torch.Tensor, features: int) -> torch.Tensor:
    """Sine encoding of B x Q x 4 cxcywh boxes: B x Q x 4*features (order y, x, w, h)."""
    scaled = boxes * (2 * math.pi)
    x, y, w, h = (sine_features(scaled[..., i], features) for i in range(4))
    return torch.cat([y, x, w, h], dim=-1)


def log_distances(coords: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """N coordinates against B x Q x 2 box edges -> B x Q x N x 2 signed log-scaled offsets."""
    d = (coords[None, None, :, None] - edges[:, :, None, :]) * 8
    return torch.sign(d) * torch.log2(d.abs() + 1.0) / math.log2(8)


class DecoderLayer(nn.Module):
    """Self-attention, prompt cross-attention, image cross-attention, MLP; each post-norm."""

    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        dim = config.dim
        self.self_attn = Attention(dim, config.heads)
        self.norm2 = nn.LayerNorm(dim)
        self.ca_text = Attention(dim, config.heads)
        self.catext_norm = nn.LayerNorm(dim)
        self.cross_attn = Attention(dim, config.heads)
        self.norm1 = nn.LayerNorm(dim)
        self.linear1 = Linear(dim, config.mlp_dim)
        self.linear2 = Linear(config.mlp_dim, dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(
        self,
        x: torch.Tensor,
        query_pos: torch.Tensor,
        prompt: torch.Tensor,
        prompt_mask: torch.Tensor | None,
        image_keys: torch.Tensor,
        image: torch.Tensor,
        bias: torch.Tensor,
    ) -> torch.Tensor:
        """B x (1 + Q) x C tokens (presence first; ``query_pos`` is zero for it) -> same."""
        q = x + query_pos
        x = self.norm2(x + self.self_attn(q, q, x))
        x = self.catext_norm(x + self.ca_text(x + query_pos, prompt, prompt, prompt_mask))
        x = self.norm1(x + self.cross_attn(x + query_pos, image_keys, image, bias))
        hidden = linear(x, self.linear1.weight, self.linear1.bias, "relu")
        return self.norm3(x + self.linear2(hidden))


class Decoder(nn.Module):
    """Queries, reference boxes and the presence token through the layers."""

    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        dim, heads = config.dim, config.heads
        self.config = config
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.depth))
        self.norm = nn.LayerNorm(dim)
        self.bbox_embed = MLP([dim, dim, dim, 4])
        self.query_embed = nn.Embedding(config.num_queries, dim)
        self.reference_points = nn.Embedding(config.num_queries, 4)
        self.boxRPB_embed_x = MLP([2, dim, heads])
        self.boxRPB_embed_y = MLP([2, dim, heads])
        self.presence_token = nn.Embedding(1, dim)
        self.presence_token_head = MLP([dim, dim, dim, 1])
        self.presence_token_out_norm = nn.LayerNorm(dim)
        self.ref_point_head = MLP([2 * dim, dim, dim])

    def position_bias(self, boxes: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Box relative-position bias of B x Q cxcywh boxes: B x H x (1 + Q) x L (zero row for
        the presence token)."""
        h, w = grid
        xyxy = cxcywh_to_xyxy(boxes)
        rows = torch.arange(h, device=boxes.device, dtype=boxes.dtype) / h
        cols = torch.arange(w, device=boxes.device, dtype=boxes.dtype) / w
        by = self.boxRPB_embed_y(log_distances(rows, xyxy[..., 1::2]))  # B x Q x h x H
        bx = self.boxRPB_embed_x(log_distances(cols, xyxy[..., 0::2]))  # B x Q x w x H
        # the presence token's zero row added to the factors, not to the B x H x Q x L bias
        by = F.pad(by.permute(0, 3, 1, 2), (0, 0, 1, 0))  # B x H x (1 + Q) x h
        bx = F.pad(bx.permute(0, 3, 1, 2), (0, 0, 1, 0))
        return (by[..., :, None] + bx[..., None, :]).flatten(-2)

    def forward(
        self,
        image: torch.Tensor,
        pos: torch.Tensor,
        grid: tuple[int, int],
        prompt: torch.Tensor,
        prompt_valid: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Decode B prompts against their fused image tokens.

        Args:
            image: B x L x C fused image tokens.
            pos: 1 x L x C their sine positions.
            grid: (h, w) with h*w = L.
            prompt: B x P x C prompt tokens, valid flags B x P.

        Returns:
            normed query features B x Q x C, boxes B x Q x 4 (normalised cxcywh) and presence
            logits B x 1, all of the last layer.
        """
        b = image.shape[0]
        c = self.config
        queries = self.query_embed.weight.unsqueeze(0).expand(b, -1, -1)
        boxes = self.reference_points.weight.sigmoid().unsqueeze(0).expand(b, -1, -1)
        x = torch.cat([self.presence_token.weight.unsqueeze(0).expand(b, -1, -1), queries], 1)
        prompt_mask = key_mask(prompt_valid)
        image_keys = image + pos
        for layer in self.layers:
            query_pos = F.pad(self.ref_point_head(box_sine(boxes, c.dim // 2)), (0, 0, 1, 0))
            bias = self.position_bias(boxes, grid)
            x = layer(x, query_pos, prompt, prompt_mask, image_keys, image, bias)
            hidden = self.norm(x[:, 1:])
            boxes = (self.bbox_embed(hidden) + inverse_sigmoid(boxes)).sigmoid()
        presence = self.presence_token_head(self.presence_token_out_norm(x[:, :1])).squeeze(-1)
        return hidden, boxes, presence.clamp(-c.presence_clamp, c.presence_clamp)


class PromptMlp(nn.Module):
    """The prompt branch of the scoring: ``out_norm(x + layers.1(relu(layers.0(x))))``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([Linear(dim, hidden), Linear(hidden, dim)])
        self.out_norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fc1, fc2 = self.layers
        return self.out_norm(x + fc2(linear(x, fc1.weight, fc1.bias, "relu")))


class DotProductScoring(nn.Module):
    """Query logits: projected queries dotted with the projected mean of the prompt tokens."""

    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        dim = config.dim
        self.prompt_mlp = PromptMlp(dim, config.mlp_dim)
        self.prompt_proj = Linear(dim, dim)
        self.hs_proj = Linear(dim, dim)
        self.scale = 1.0 / math.sqrt(dim)
        self.clamp = config.score_clamp

    def forward(
        self, queries: torch.Tensor, prompt: torch.Tensor, valid: torch.Tensor | None
    ) -> torch.Tensor:
        """B x Q x C queries, B x P x C prompt tokens (valid B x P) -> B x Q logits."""
        tokens = self.prompt_mlp(prompt)
        if valid is None:
            pooled = tokens.mean(dim=1)
        else:
            weight = valid.to(tokens.dtype).unsqueeze(-1)
            pooled = (tokens * weight).sum(dim=1) / weight.sum(dim=1).clamp(min=1.0)
        proj = self.prompt_proj(pooled)
        logits = torch.einsum("bqc,bc->bq", self.hs_proj(queries), proj) * self.scale
        return logits.clamp(-self.clamp, self.clamp)
