"""Mask filters of everything mode: stability, boxes, crop edges, NMS and small regions."""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torchvision.ops import batched_nms


def stability_score(logits: torch.Tensor, threshold: float, offset: float) -> torch.Tensor:
    """IoU between the masks thresholded at ``threshold + offset`` and ``threshold - offset``.

    Args:
        logits: N x H x W mask logits.

    Returns:
        N scores in [0, 1] (float32).
    """
    # Counting through a uint8 view is the fast reduction path for booleans.
    inter = (logits > threshold + offset).flatten(1).view(torch.uint8).sum(-1, dtype=torch.int32)
    union = (logits > threshold - offset).flatten(1).view(torch.uint8).sum(-1, dtype=torch.int32)
    return inter / union


def masks_to_boxes(masks: torch.Tensor) -> torch.Tensor:
    """Inclusive xyxy boxes of N x H x W bool masks (N x 4 int64; zeros for empty masks)."""
    if masks.numel() == 0:
        return torch.zeros((*masks.shape[:-2], 4), dtype=torch.int64, device=masks.device)
    h, w = masks.shape[-2:]
    as_bytes = masks.view(torch.uint8)  # max over bytes is much faster than any() on bool
    rows = as_bytes.amax(dim=-1).bool()  # N x H
    cols = as_bytes.amax(dim=-2).bool()  # N x W
    empty = ~rows.any(dim=-1)
    ys = torch.arange(h, device=masks.device)
    xs = torch.arange(w, device=masks.device)
    bottom = torch.where(rows, ys, -1).amax(-1)
    top = torch.where(rows, ys, h).amin(-1)
    right = torch.where(cols, xs, -1).amax(-1)
    left = torch.where(cols, xs, w).amin(-1)
    boxes = torch.stack([left, top, right, bottom], dim=-1)
    return boxes * (~empty).unsqueeze(-1)


def near_crop_edge(
    boxes: torch.Tensor, crop_box: list[int], image_box: list[int], atol: float = 20.0
) -> torch.Tensor:
    """Which boxes (crop coordinates) touch an edge of their crop that is not an image edge."""
    crop = torch.as_tensor(crop_box, dtype=torch.float, device=boxes.device)
    image = torch.as_tensor(image_box, dtype=torch.float, device=boxes.device)
    uncropped = boxes.float() + crop[[0, 1, 0, 1]]
    at_crop = torch.isclose(uncropped, crop[None, :], atol=atol, rtol=0)
    at_image = torch.isclose(uncropped, image[None, :], atol=atol, rtol=0)
    return (at_crop & ~at_image).any(dim=1)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices kept by non-maximum suppression of xyxy boxes, best score first."""
    zeros = torch.zeros(len(boxes), dtype=torch.int64, device=boxes.device)
    return batched_nms(boxes.float(), scores.float(), zeros, iou_threshold)


def remove_small_regions(mask: np.ndarray, min_area: float, mode: str) -> tuple[np.ndarray, bool]:
    """Fill holes (``mode="holes"``) or drop islands (``"islands"``) smaller than ``min_area``.

    Returns:
        the corrected H x W bool mask and whether anything changed.
    """
    fill_holes = mode == "holes"
    working = (fill_holes ^ mask).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(working, connectivity=8)
    sizes = stats[1:, cv2.CC_STAT_AREA]
    small = [i + 1 for i, s in enumerate(sizes) if s < min_area]
    if not small:
        return mask, False
    fill = [0, *small]
    if not fill_holes:
        fill = [i for i in range(n) if i not in fill] or [int(np.argmax(sizes)) + 1]
    return np.isin(labels, fill), True
