"""Validation of user prompts (points, labels, boxes, mask inputs) in original image pixels.

Every problem is reported as a :class:`~tijeras.errors.PromptError` naming the prompt, its shape
or the offending coordinate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..errors import PromptError

if TYPE_CHECKING:
    from ..contract import InputSpec

VALID_LABELS = (-1, 0, 1, 2, 3)


@dataclass
class Prompts:
    """Validated prompts, always batched: coords B x N x 2, labels B x N, boxes B x 4,
    masks B x 1 x h x w. ``batched`` tells whether the caller gave a batch dimension."""

    coords: np.ndarray | None
    labels: np.ndarray | None
    boxes: np.ndarray | None
    masks: np.ndarray | None
    batched: bool


def _array(value: object, name: str, dtype: type) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise PromptError(f"{name} must be numeric, got {value!r}: {exc}") from None
    if arr.size == 0:
        raise PromptError(f"{name} is empty (shape {arr.shape})")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise PromptError(f"{name} contains NaN or infinite values")
    return arr


def _check_points(
    coords: np.ndarray, labels: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, bool]:
    if coords.ndim not in (2, 3) or coords.shape[-1] != 2:
        raise PromptError(f"point_coords must be N x 2 or B x N x 2, got shape {coords.shape}")
    batched = coords.ndim == 3
    if labels.shape != coords.shape[:-1]:
        raise PromptError(
            f"point_labels shape {labels.shape} does not match point_coords {coords.shape} "
            f"(expected {coords.shape[:-1]})"
        )
    bad = ~np.isin(labels, VALID_LABELS)
    if bad.any():
        raise PromptError(
            f"point label {labels[bad].flat[0]} is not one of 1 (foreground), 0 (background), "
            "-1 (padding)"
        )
    h, w = size
    real = labels != -1
    outside = real & (
        (coords[..., 0] < 0) | (coords[..., 0] > w) | (coords[..., 1] < 0) | (coords[..., 1] > h)
    )
    if outside.any():
        x, y = coords[outside][0]
        raise PromptError(f"point ({x:g}, {y:g}) is outside the {w}x{h} image")
    if not batched:
        return coords[None], labels[None], False
    return coords, labels, True


def _check_boxes(boxes: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, bool]:
    if boxes.shape[-1:] != (4,) or boxes.ndim not in (1, 2):
        raise PromptError(f"box must be 4 numbers (x0, y0, x1, y1) or B x 4, got {boxes.shape}")
    batched = boxes.ndim == 2
    boxes = boxes.reshape(-1, 4)
    h, w = size
    for x0, y0, x1, y1 in boxes:
        if x1 < x0 or y1 < y0:
            raise PromptError(
                f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) has x1 < x0 or y1 < y0; "
                "expected x0, y0, x1, y1 with x0 <= x1 and y0 <= y1"
            )
        if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
            raise PromptError(f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is outside the {w}x{h} image")
    return boxes, batched


def validate_prompts(
    point_coords: object,
    point_labels: object,
    box: object,
    mask_input: object,
    original_size: tuple[int, int],
    spec: InputSpec,
) -> Prompts:
    """Check user prompts against an image of ``original_size`` (h, w) and batch them.

    The one validation of points, labels, boxes and mask inputs: the drop-in predictors, the
    server and the CLI all call it, so a point outside the image is refused the same way
    everywhere.
    """
    if point_coords is None and box is None and mask_input is None:
        raise PromptError("no prompt given: pass points, a box or a mask input")
    coords = labels = boxes = masks = None
    flags = []
    if point_coords is not None:
        if point_labels is None:
            raise PromptError("point_labels must be given with point_coords")
        coords_arr = _array(point_coords, "point_coords", np.float64)
        labels_arr = _array(point_labels, "point_labels", np.float64)
        if not np.all(labels_arr == np.round(labels_arr)):
            raise PromptError("point_labels must be integers")
        coords, labels, batched = _check_points(
            coords_arr, labels_arr.astype(np.int64), original_size
        )
        flags.append(batched)
    if box is not None:
        boxes, batched = _check_boxes(_array(box, "box", np.float64), original_size)
        flags.append(batched)
    if mask_input is not None:
        masks = _array(mask_input, "mask_input", np.float32)
        expected = tuple(spec.mask_input_size)
        if masks.ndim == 3:
            masks, batched = masks[None], False
        else:
            batched = True
        if masks.ndim != 4 or masks.shape[1] != 1 or tuple(masks.shape[2:]) != expected:
            raise PromptError(
                f"mask_input must be 1 x {expected[0]} x {expected[1]} (or B x 1 x ...), "
                f"got {np.shape(mask_input)}"
            )
        flags.append(batched)
    sizes = {a.shape[0] for a in (coords, boxes, masks) if a is not None}
    if len(sizes) > 1:
        raise PromptError(f"prompt batch sizes differ: {sorted(sizes)}")
    return Prompts(coords, labels, boxes, masks, batched=any(flags))
