"""Optional clean-up of low-res mask logits: fill small holes, remove small specks.

Components are 8-connected regions of a 256 x 256 logit map above (specks) or at/below
(holes) the mask threshold; those of at most the given area get a logit 10 beyond the threshold.
"""

from __future__ import annotations

import numpy as np
import torch


def _small_components(binary: np.ndarray, max_area: float) -> np.ndarray:
    """Pixels of the 8-connected components of ``binary`` with area <= ``max_area``."""
    import cv2

    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        binary.astype(np.uint8), connectivity=8
    )
    areas = stats[:, cv2.CC_STAT_AREA].copy()
    areas[0] = np.iinfo(areas.dtype).max  # label 0 is the other side, never small
    return (labels > 0) & (areas[labels] <= max_area)


def fill_holes_and_sprinkles(
    logits: torch.Tensor, threshold: float, max_hole_area: float, max_sprinkle_area: float
) -> torch.Tensor:
    """B x C x h x w logits with small holes filled (+10) and small specks removed (-10)."""
    source = logits.detach().float().cpu().numpy()
    out = source.copy()
    planes = out.reshape(-1, *out.shape[-2:])
    # Both kinds of component are found on the logits as given.
    for src, plane in zip(source.reshape(planes.shape), planes):
        if max_hole_area > 0:
            plane[_small_components(src <= threshold, max_hole_area)] = threshold + 10.0
        if max_sprinkle_area > 0:
            plane[_small_components(src > threshold, max_sprinkle_area)] = threshold - 10.0
    return torch.from_numpy(out).to(logits.device)
