"""Prompt encoder: points, boxes and masks to sparse and dense embeddings.

Shapes: B prompts, N points per prompt, C embedding channels, h x w the embedding grid.
Coordinates are xy in the resized input frame (longest side = image_size).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .common import LayerNorm2d

# Point labels: -1 padding, 0 background, 1 foreground, 2 / 3 box top-left / bottom-right.
PAD_LABEL = -1


class PositionEmbeddingRandom(nn.Module):
    """Random Fourier features of normalised xy coordinates."""

    def __init__(self, num_pos_feats: int = 64, scale: float = 1.0) -> None:
        super().__init__()
        self.register_buffer(
            "positional_encoding_gaussian_matrix", scale * torch.randn((2, num_pos_feats))
        )

    def encode(self, coords: torch.Tensor) -> torch.Tensor:
        """Coordinates in [0, 1] (... x 2) -> ... x 2F float32 features (sin then cos).

        Computed in float32 whatever the model dtype: pixel coordinates need the precision.
        """
        matrix = self.positional_encoding_gaussian_matrix.float()
        proj = (2 * coords.float() - 1) @ matrix
        proj = (2 * math.pi) * proj
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)

    def forward(self, size: tuple[int, int]) -> torch.Tensor:
        """Dense encoding of an h x w grid of cell centres -> 2F x h x w."""
        h, w = size
        matrix = self.positional_encoding_gaussian_matrix
        ys = (torch.arange(h, device=matrix.device, dtype=torch.float32) + 0.5) / h
        xs = (torch.arange(w, device=matrix.device, dtype=torch.float32) + 0.5) / w
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # h x w x 2 (x, y)
        return self.encode(grid).permute(2, 0, 1).to(matrix.dtype)

    def forward_with_coords(
        self, coords: torch.Tensor, image_size: tuple[int, int]
    ) -> torch.Tensor:
        """Pixel coordinates (... x 2, xy) in an image of ``image_size`` (h, w) -> ... x 2F."""
        coords = coords.float()
        size = coords.new_tensor([float(image_size[1]), float(image_size[0])])
        return self.encode(coords / size)


class PromptEncoder(nn.Module):
    """Embeds point, box and mask prompts for the mask decoder."""

    def __init__(
        self,
        *,
        embed_dim: int,
        image_embedding_size: tuple[int, int],
        input_image_size: tuple[int, int],
        mask_in_chans: int,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.input_image_size = input_image_size
        self.image_embedding_size = image_embedding_size
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        # 0 background point, 1 foreground point, 2 box top-left, 3 box bottom-right.
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_input_size = (4 * image_embedding_size[0], 4 * image_embedding_size[1])
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            nn.GELU(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            nn.GELU(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def get_dense_pe(self) -> torch.Tensor:
        """Positional encoding of the embedding grid: 1 x C x h x w."""
        return self.pe_layer(self.image_embedding_size).unsqueeze(0)

    def _label_table(self) -> torch.Tensor:
        """Rows for labels -1..3: padding, background, foreground, box corners (5 x C)."""
        rows = [self.not_a_point_embed.weight] + [e.weight for e in self.point_embeddings]
        return torch.cat(rows, dim=0)

    def embed_points(self, points: torch.Tensor, labels: torch.Tensor, pad: bool) -> torch.Tensor:
        """B x N x 2 points and B x N labels -> B x N(+1) x C (one padding point if ``pad``)."""
        points = points + 0.5  # pixel centres
        if pad:
            points = torch.cat([points, points.new_zeros(points.shape[0], 1, 2)], dim=1)
            labels = torch.cat([labels, labels.new_full((labels.shape[0], 1), PAD_LABEL)], dim=1)
        emb = self.pe_layer.forward_with_coords(points, self.input_image_size)
        labels = labels.long()
        emb = torch.where((labels == PAD_LABEL).unsqueeze(-1), torch.zeros_like(emb), emb)
        table = self._label_table()
        return (emb + table[(labels + 1).clamp(0, 4)].float()).to(table.dtype)

    def embed_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        """B x 4 boxes (x0, y0, x1, y1) -> B x 2 x C corner embeddings."""
        corners = (boxes + 0.5).reshape(-1, 2, 2)
        emb = self.pe_layer.forward_with_coords(corners, self.input_image_size)
        corner_rows = torch.cat(
            [self.point_embeddings[2].weight, self.point_embeddings[3].weight], dim=0
        )
        return (emb + corner_rows.float()).to(corner_rows.dtype)

    def embed_masks(self, masks: torch.Tensor) -> torch.Tensor:
        """B x 1 x 4h x 4w low-res mask logits -> B x C x h x w."""
        return self.mask_downscaling(masks)

    def forward(
        self,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        masks: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embed the prompts of B queries.

        Returns:
            sparse: B x K x C (points, padding point, box corners);
            dense: B x C x h x w (mask embedding, or the learned no-mask embedding).
        """
        weight = self.no_mask_embed.weight
        bs = _batch_size(points, boxes, masks)
        parts = []
        if points is not None:
            parts.append(self.embed_points(points[0], points[1], pad=boxes is None))
        if boxes is not None:
            parts.append(self.embed_boxes(boxes))
        if parts:
            sparse = torch.cat(parts, dim=1).to(weight.dtype)
        else:
            sparse = weight.new_empty((bs, 0, self.embed_dim))
        if masks is not None:
            dense = self.embed_masks(masks.to(weight.dtype))
        else:
            h, w = self.image_embedding_size
            dense = weight.reshape(1, -1, 1, 1).expand(bs, -1, h, w)
        return sparse, dense


def _batch_size(
    points: tuple[torch.Tensor, torch.Tensor] | None,
    boxes: torch.Tensor | None,
    masks: torch.Tensor | None,
) -> int:
    if points is not None:
        return points[0].shape[0]
    if boxes is not None:
        return boxes.shape[0]
    if masks is not None:
        return masks.shape[0]
    return 1
