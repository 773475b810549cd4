"""Region measures shared by the prompt candidates and everything mode.

Shapes: ``labels`` is an h x w integer map of regions 0..n-1; ``image`` h x w x 3 uint8.
"""

from __future__ import annotations

import cv2
import numpy as np


def outline(labels: np.ndarray) -> np.ndarray:
    """h x w bool: pixels with a 4-neighbour of another label."""
    edge = np.zeros(labels.shape, bool)
    dx = labels[:, 1:] != labels[:, :-1]
    dy = labels[1:, :] != labels[:-1, :]
    edge[:, 1:] |= dx
    edge[:, :-1] |= dx
    edge[1:, :] |= dy
    edge[:-1, :] |= dy
    return edge


def gradient(image: np.ndarray, sigma: float) -> np.ndarray:
    """h x w float32 colour gradient magnitude (Sobel after Gaussian smoothing)."""
    smooth = cv2.GaussianBlur(image.astype(np.float32), (0, 0), max(sigma, 0.1))
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)
    return np.sqrt((gx**2 + gy**2).sum(axis=2))


def boundary_contrast(grad: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Per region ``b / (b + i)`` in 0..1: mean gradient on its outline (b) and inside (i).

    0.5 means the outline is no stronger than the inside; a region without outline (the
    whole image) gets 0.5.
    """
    flat, values = labels.ravel(), grad.ravel()
    edge = outline(labels).ravel()
    b_sum = np.bincount(flat[edge], values[edge], minlength=n)
    b_cnt = np.bincount(flat[edge], minlength=n)
    i_sum = np.bincount(flat[~edge], values[~edge], minlength=n)
    i_cnt = np.bincount(flat[~edge], minlength=n)
    inside = i_sum / np.maximum(i_cnt, 1)
    on_outline = np.where(b_cnt > 0, b_sum / np.maximum(b_cnt, 1), inside)
    inside = np.where(i_cnt > 0, inside, on_outline)
    return on_outline / np.maximum(on_outline + inside, 1e-6)
