"""The exemplar encoder: boxes marking examples (positive) or counter-examples (negative) of
the concept, turned into prompt tokens.

Each box (normalised centre x, centre y, width, height) becomes one token, the sum of

- a linear map of its four coordinates (``boxes_direct_project``);
- its 7 x 7 RoI-aligned patch of the LayerNormed stride-14 image features, reduced by a 7 x 7
  convolution (``boxes_pool_project``);
- a linear map of the sine encoding of its centre plus its height and width
  (``boxes_pos_enc_project``);
- the embedding of its label (``label_embed``: 0 negative, 1 positive).

A learned ``cls_embed`` token follows the valid boxes; all go through ``final_proj`` and ``norm``,
then pre-norm layers (self-attention among the prompt tokens, cross-attention to the image
features with their sine positions, ReLU MLP) and ``encode_norm``.

Shapes: B prompts, E exemplar boxes, C channels, h x w the stride-14 grid.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..blocks.linear import Linear, linear
from .attention import Attention, key_mask
from .config import TransformerConfig
from .neck import sine_features


class GeometryLayer(nn.Module):
    """Self-attention over the prompt tokens, cross-attention to the image, MLP (pre-norm)."""

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

    def forward(
        self,
        x: torch.Tensor,
        valid: torch.Tensor,
        image_keys: torch.Tensor,
        image: torch.Tensor,
    ) -> torch.Tensor:
        """B x P x C prompt tokens; image keys (features + positions) and values 1|B x L x C."""
        y = self.norm1(x)
        x = x + self.self_attn(y, y, y, key_mask(valid))
        x = x + self.cross_attn_image(self.norm2(x), image_keys, image)
        fc1 = self.linear1
        return x + self.linear2(linear(self.norm3(x), fc1.weight, fc1.bias, "relu"))


class GeometryEncoder(nn.Module):
    """Exemplar boxes -> prompt tokens (B x (E + 1) x C) with their valid flags."""

    def __init__(self, config: TransformerConfig, roi_size: int) -> None:
        super().__init__()
        dim = config.dim
        self.dim = dim
        self.roi_size = roi_size
        self.label_embed = nn.Embedding(2, dim)
        self.cls_embed = nn.Embedding(1, dim)
        self.boxes_direct_project = Linear(4, dim)
        self.boxes_pool_project = nn.Conv2d(dim, dim, roi_size)
        self.boxes_pos_enc_project = Linear(dim + 2, dim)
        self.img_pre_norm = nn.LayerNorm(dim)
        self.final_proj = Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.encode = nn.ModuleList(GeometryLayer(config) for _ in range(config.depth))
        self.encode_norm = nn.LayerNorm(dim)

    def pooled(self, features: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """RoI-aligned, projected patches of B x E normalised cxcywh boxes: B x E x C."""
        from torchvision.ops import roi_align

        b, e = boxes.shape[:2]
        h, w = features.shape[-2:]
        normed = self.img_pre_norm(features.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        scale = boxes.new_tensor([w, h, w, h])
        cx, cy, bw, bh = boxes.unbind(-1)
        xyxy = torch.stack([cx - 0.5 * bw, cy - 0.5 * bh, cx + 0.5 * bw, cy + 0.5 * bh], -1)
        xyxy = xyxy * scale
        if normed.shape[0] != b:
            normed = normed.expand(b, -1, -1, -1)
        dtype = torch.float16 if normed.dtype == torch.bfloat16 else normed.dtype
        patches = roi_align(normed.to(dtype), list(xyxy.to(dtype).unbind(0)), self.roi_size)
        return self.boxes_pool_project(patches.to(normed.dtype)).view(b, e, self.dim)

    def box_positions(self, boxes: torch.Tensor) -> torch.Tensor:
        """Sine encoding of the box centres (y half, then x) plus height and width: B x E x (C+2)."""
        cx, cy, bw, bh = boxes.unbind(-1)
        half = self.dim // 2
        pos_x = sine_features(cx * (2 * math.pi), half)
        pos_y = sine_features(cy * (2 * math.pi), half)
        return torch.cat([pos_y, pos_x, bh[..., None], bw[..., None]], dim=-1)

    def forward(
        self,
        boxes: torch.Tensor,
        labels: torch.Tensor,
        valid: torch.Tensor,
        features: torch.Tensor,
        positions: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode exemplar boxes against one image.

        Args:
            boxes: B x E x 4 normalised (cx, cy, w, h).
            labels: B x E, 1 positive, 0 negative.
            valid: B x E bool, False on padding boxes.
            features: 1|B x C x h x w stride-14 image features.
            positions: 1 x C x h x w their sine positions.

        Returns:
            tokens B x (E + 1) x C (the valid boxes, the cls token, then padding) and their
            valid flags B x (E + 1).
        """
        b, e = boxes.shape[:2]
        tokens = self.boxes_direct_project(boxes) + self.pooled(features, boxes)
        tokens = tokens + self.boxes_pos_enc_project(self.box_positions(boxes))
        tokens = tokens + self.label_embed(labels.long())
        # the cls token goes right after the valid boxes of each prompt
        count = valid.sum(dim=1)
        order = torch.arange(e + 1, device=boxes.device)
        out = tokens.new_zeros(b, e + 1, self.dim)
        out[:, :e] = tokens
        out[torch.arange(b, device=boxes.device), count] = self.cls_embed.weight[0].to(out.dtype)
        out_valid = order[None, :] <= count[:, None]
        x = self.norm(self.final_proj(out))
        image = features.flatten(2).transpose(1, 2)
        image_keys = image + positions.flatten(2).transpose(1, 2).to(image.dtype)
        for layer in self.encode:
            x = layer(x, out_valid, image_keys, image)
        return self.encode_norm(x), out_valid
