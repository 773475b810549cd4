"""SAM 2's optional clean-up of low-res mask logits: fill small holes, remove small specks.

Components are 8-connected regions of a low-res (256 x 256) logit map above (specks) or at or
below (holes) the mask threshold, both found on the logits as given; those of at most the given
area (in low-res pixels) get a logit 10 beyond the threshold. This is what Meta's
``SAM2Transforms.postprocess_masks`` computes with its CUDA extension (which its CPU builds
lack, skipping the clean-up with a warning); here it runs with OpenCV on any device.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import torch

HOLE_FILL = 10.0  # logit distance from the threshold given to filled pixels


def _components(binary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels (0 off, 1.. per 8-connected component) and each pixel's component area (0 off)
    of an H x W binary map."""
    import cv2

    _, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    areas = stats[:, cv2.CC_STAT_AREA].astype(np.int32)
    areas[0] = 0
    return labels.astype(np.int32), areas[labels]


def connected_components(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """8-connected components of N x 1 x H x W binary masks.

    Returns:
        labels (N x 1 x H x W int32: 0 on background, a positive id per component) and
        areas (N x 1 x H x W int32: the pixel count of each pixel's component, 0 on
        background), on the masks' device.
    """
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"masks must be N x 1 x H x W, got shape {tuple(mask.shape)}")
    planes = (mask != 0).cpu().numpy()[:, 0]
    labels = np.zeros(planes.shape, np.int32)
    areas = np.zeros(planes.shape, np.int32)
    for i, plane in enumerate(planes):
        labels[i], areas[i] = _components(plane)
    to = functools.partial(torch.as_tensor, device=mask.device)
    return to(labels[:, None]), to(areas[:, None])


def fill_holes_and_sprinkles(
    logits: torch.Tensor,
    threshold: float,
    max_hole_area: float,
    max_sprinkle_area: float,
    hole_value: float | None = None,
) -> torch.Tensor:
    """... x h x w logits with holes of at most ``max_hole_area`` filled (``hole_value``,
    threshold + 10 by default) and specks of at most ``max_sprinkle_area`` removed
    (threshold - 10); 0 turns either off. Float32 out, on the logits' device."""
    if hole_value is None:
        hole_value = threshold + HOLE_FILL
    source = logits.detach().float().cpu().numpy()
    out = source.copy()
    planes = out.reshape(-1, *out.shape[-2:])
    for src, plane in zip(source.reshape(planes.shape), planes):
        if max_hole_area > 0:
            _, area = _components(src <= threshold)
            plane[(area > 0) & (area <= max_hole_area)] = hole_value
        if max_sprinkle_area > 0:
            _, area = _components(src > threshold)
            plane[(area > 0) & (area <= max_sprinkle_area)] = threshold - HOLE_FILL
    return torch.from_numpy(out).to(logits.device)


def low_res_cleanup(
    max_area: float, threshold: float = 0.0
) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """SAM 2's everything-mode clean-up for ``min_mask_region_area``: holes and specks of at
    most ``max_area`` low-res pixels, as Meta's generator asks of its predictor; None when
    ``max_area`` is 0."""
    if max_area <= 0:
        return None
    return functools.partial(
        fill_holes_and_sprinkles,
        threshold=threshold,
        max_hole_area=max_area,
        max_sprinkle_area=max_area,
    )
