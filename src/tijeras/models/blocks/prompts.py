"""Prompt layouts shared by the SAM 2-style decoders (SAM 2, SAM 3's interactive head)."""

from __future__ import annotations

import torch


def merge_boxes_into_points(
    points: tuple[torch.Tensor, torch.Tensor] | None, boxes: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """B x 4 boxes as corner points (labels 2, 3) placed before B x N points.

    SAM 2 was trained with a box given to the prompt encoder as its two corners, ahead of the
    clicks. Returns B x (2 + N) x 2 coordinates and B x (2 + N) int labels, or ``points``
    unchanged when there is no box.
    """
    if boxes is None:
        return points
    corners = boxes.reshape(-1, 2, 2).float()
    labels = torch.tensor([[2, 3]], dtype=torch.int, device=boxes.device)
    labels = labels.expand(corners.shape[0], 2)
    if points is None:
        return corners, labels
    coords, point_labels = points
    b = max(corners.shape[0], coords.shape[0])
    coords = torch.cat([corners.expand(b, -1, -1), coords.float().expand(b, -1, -1)], dim=1)
    point_labels = point_labels.to(labels.dtype).expand(b, -1)
    return coords, torch.cat([labels.expand(b, -1), point_labels], dim=1)
