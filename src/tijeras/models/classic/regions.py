"""Felzenszwalb regions to everything-mode records: masks, scores, boxes and points.

Shapes: the segmentation runs on the h x w working image; masks are placed at the H x W
original size. Labels are 0..n-1, every label non-empty (as Felzenszwalb returns them).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from scipy import ndimage
from skimage.segmentation import felzenszwalb

from ...automatic.filters import remove_small_regions
from ...automatic.records import MaskRecords
from ...automatic.tiling import place_rle
from .config import ClassicConfig
from .measures import boundary_contrast, gradient, outline


def over_segment(image: np.ndarray, points_per_side: int, config: ClassicConfig) -> np.ndarray:
    """h x w Felzenszwalb labels 0..n-1 of an h x w x 3 image at the granularity of a
    ``points_per_side`` grid (see :mod:`tijeras.classic.everything`)."""
    cell = image.shape[0] * image.shape[1] / points_per_side**2
    return felzenszwalb(
        image,
        scale=config.everything_scale * cell,
        sigma=config.everything_sigma,
        min_size=max(1, int(config.everything_min_cell * cell)),
    )


def region_records(
    image_small: np.ndarray,
    full_size: tuple[int, int],
    scale: float,
    sigma: float,
    min_size: int,
    min_area: int = 0,
) -> MaskRecords:
    """Records of the regions of ``image_small`` (h x w x 3 uint8), masks at ``full_size``.

    Args:
        image_small: the working image.
        full_size: (H, W) of the original image the masks are placed in.
        scale: Felzenszwalb's k (a region area in working pixels).
        sigma: Gaussian smoothing before segmentation.
        min_size: Felzenszwalb's smallest region (working pixels).
        min_area: drop regions, and fill holes, smaller than this (original pixels).

    Returns:
        The regions, best boundary contrast first.
    """
    labels = felzenszwalb(image_small, scale=scale, sigma=sigma, min_size=min_size)
    coarse = felzenszwalb(image_small, scale=2 * scale, sigma=sigma, min_size=min_size)
    n = int(labels.max()) + 1
    contrast = boundary_contrast(gradient(image_small, sigma), labels, n)
    stability = best_match_iou(labels, coarse, n)
    points = interior_points(labels, n)
    height, width = full_size
    h, w = labels.shape
    full = labels.astype(np.int32)
    if (h, w) != (height, width):
        full = cv2.resize(full, (width, height), interpolation=cv2.INTER_NEAREST)
    points = (points + 0.5) * np.array([width / w, height / h]) - 0.5
    rows = []
    for label, where in enumerate(ndimage.find_objects(full + 1, max_label=n)):
        if where is None:  # vanished in the resize
            continue
        local = full[where] == label
        if local.sum() < max(min_area, 1):
            continue
        if min_area > 0:
            local = _fill_holes(local, min_area)
        y0, x0 = where[0].start, where[1].start
        rle = place_rle(local, x0, y0, height, width)
        rle["counts"] = rle["counts"].decode("ascii")
        box = (x0, y0, x0 + local.shape[1] - 1, y0 + local.shape[0] - 1)
        rows.append((float(contrast[label]), float(stability[label]), points[label], box, rle))
    rows.sort(key=lambda row: -row[0])
    if not rows:
        return MaskRecords.empty()
    return MaskRecords(
        rles=[row[4] for row in rows],
        iou=torch.tensor([row[0] for row in rows], dtype=torch.float32),
        stability=torch.tensor([row[1] for row in rows], dtype=torch.float32),
        points=torch.tensor(np.array([row[2] for row in rows]), dtype=torch.float32),
        boxes=torch.tensor([row[3] for row in rows], dtype=torch.int64),
        crop_boxes=torch.tensor([[0, 0, width, height]] * len(rows), dtype=torch.int64),
    )


def _fill_holes(local: np.ndarray, min_area: int) -> np.ndarray:
    """Fill holes smaller than ``min_area``; the 1-pixel frame keeps bbox notches open."""
    padded = np.pad(local, 1)
    filled, _ = remove_small_regions(padded, min_area, "holes")
    return filled[1:-1, 1:-1]


def best_match_iou(labels: np.ndarray, other: np.ndarray, n: int) -> np.ndarray:
    """Per region of ``labels``, its largest IoU with a region of ``other`` (same shape)."""
    m = int(other.max()) + 1
    key = labels.ravel().astype(np.int64) * m + other.ravel()
    pairs, inter = np.unique(key, return_counts=True)
    a, b = np.divmod(pairs, m)
    area_a = np.bincount(labels.ravel(), minlength=n)
    area_b = np.bincount(other.ravel(), minlength=m)
    iou = inter / (area_a[a] + area_b[b] - inter)
    best = np.zeros(n)
    np.maximum.at(best, a, iou)
    return best


def interior_points(labels: np.ndarray, n: int) -> np.ndarray:
    """n x 2 xy: per region, its pixel farthest from its outline (working pixels)."""
    w = labels.shape[1]
    inner = (~outline(labels)).astype(np.uint8)
    dist = cv2.distanceTransform(inner, cv2.DIST_L2, 3).ravel()
    flat = labels.ravel()
    order = np.lexsort((dist, flat))
    last = np.cumsum(np.bincount(flat, minlength=n)) - 1
    ys, xs = np.divmod(order[last], w)
    return np.stack([xs, ys], axis=1).astype(np.float64)
