"""The click protocol of interactive-segmentation benchmarks (RITM, SimpleClick, SAM).

Each click goes where the current error is deepest: both error regions (false negatives:
object pixels the prediction misses; false positives: background pixels it covers) are measured
with a Euclidean distance transform, the image border counting as a boundary (the masks are
padded with one background pixel). The region whose interior point lies farther from its
boundary wins: a false-negative region gives a foreground click, a false-positive region a
background click, placed at that farthest pixel (the first one in row-major order when several
tie). Pixels already clicked and ignored pixels are never chosen. With an empty prediction the
first click is the object's own most interior pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Click:
    """A simulated click at pixel (x, y) of the original image."""

    x: int
    y: int
    positive: bool

    @property
    def label(self) -> int:
        """1 for a foreground click, 0 for a background click (SAM's point labels)."""
        return 1 if self.positive else 0


def distance_to_boundary(region: np.ndarray) -> np.ndarray:
    """Exact Euclidean distance of each pixel of ``region`` to the nearest pixel outside it.

    Args:
        region: H x W bool.

    Returns:
        H x W float32; 0 outside the region; pixels beyond the image border count as outside.
    """
    padded = np.pad(region.astype(np.uint8), 1, mode="constant")
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return dist[1:-1, 1:-1]


def next_click(
    gt: np.ndarray,
    pred: np.ndarray,
    ignore: np.ndarray | None = None,
    clicked: np.ndarray | None = None,
) -> Click | None:
    """The next simulated click given the ground truth and the current prediction.

    Args:
        gt: H x W bool object mask.
        pred: H x W bool predicted mask (all False before the first click).
        ignore: H x W bool pixels left out of the protocol, or None.
        clicked: H x W bool pixels already clicked (never clicked again), or None.

    Returns:
        The click, or None when there is no error left to correct.
    """
    valid = np.ones_like(gt, dtype=bool) if ignore is None else ~ignore
    if clicked is not None:
        valid = valid & ~clicked
    fn = distance_to_boundary(gt & ~pred & valid)
    fp = distance_to_boundary(~gt & pred & valid)
    fn_max, fp_max = float(fn.max()), float(fp.max())
    if fn_max <= 0.0 and fp_max <= 0.0:
        return None
    positive = fn_max > fp_max
    dist = fn if positive else fp
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return Click(x=int(x), y=int(y), positive=positive)


class Clicker:
    """Keeps the clicks of one object and places the next one (see :func:`next_click`)."""

    def __init__(self, gt: np.ndarray, ignore: np.ndarray | None = None) -> None:
        self.gt = gt.astype(bool)
        self.ignore = None if ignore is None else ignore.astype(bool)
        self.clicks: list[Click] = []
        self._clicked = np.zeros_like(self.gt)

    def click(self, pred: np.ndarray | None) -> Click | None:
        """Add the click that corrects ``pred`` (None before the first click) and return it."""
        if pred is None:
            pred = np.zeros_like(self.gt)
        click = next_click(self.gt, pred.astype(bool), self.ignore, self._clicked)
        if click is not None:
            self.clicks.append(click)
            self._clicked[click.y, click.x] = True
        return click

    def prompt(self) -> tuple[np.ndarray, np.ndarray]:
        """All clicks so far as SAM point prompts: N x 2 xy coordinates and N labels."""
        coords = np.array([[c.x, c.y] for c in self.clicks], dtype=np.float64).reshape(-1, 2)
        labels = np.array([c.label for c in self.clicks], dtype=np.int64)
        return coords, labels
