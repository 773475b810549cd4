"""Point and box prompts on a video frame: checked, then scaled to the model input."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .errors import VideoPromptError
from .state import PointPrompt, VideoState


def point_prompt(
    state: VideoState,
    frame_idx: int,
    points: Any,
    labels: Any,
    box: Any,
    normalize: bool,
    image_size: int,
) -> PointPrompt:
    """Validated points (and box corners first) in model-input pixels, a batch of one.

    Points and boxes are in the frame's pixels (``normalize``) or in 0..1; anything outside the
    frame, non-finite, of the wrong shape, or a box with x1 < x0 is a
    :class:`~tijeras.video.errors.VideoPromptError` naming it. Coordinates become pixels of the
    S x S model input as Meta's predictor computes them (``xy / (W, H) * S``).
    """
    h, w = state.video_size
    limit = (float(w), float(h)) if normalize else (1.0, 1.0)
    unit = "pixels" if normalize else "normalised coordinates"
    coords = torch.zeros(1, 0, 2)
    lab = torch.zeros(1, 0, dtype=torch.int32)
    if points is not None:
        if _numel(points):
            given = _as_float(points, "points")
            if given.shape[-1] != 2 or given.dim() > 3 or (given.dim() == 3 and len(given) != 1):
                raise VideoPromptError(
                    f"points must be N x 2 (x, y) for one object, got shape {tuple(given.shape)}"
                )
            coords = given.reshape(1, -1, 2)
        lab = _as_int(labels, "labels").reshape(1, -1)
        if coords.shape[1] != lab.shape[1]:
            raise VideoPromptError(
                f"{coords.shape[1]} points but {lab.shape[1]} labels on frame {frame_idx}"
            )
        bad = [int(v) for v in lab.flatten().tolist() if v not in (-1, 0, 1, 2, 3)]
        if bad:
            raise VideoPromptError(
                f"point labels must be 1 (foreground) or 0 (background), got {bad[0]}"
            )
    for i, (x, y) in enumerate(coords[0].tolist()):
        if not (0.0 <= x <= limit[0] and 0.0 <= y <= limit[1]):
            raise VideoPromptError(
                f"point {i} ({x:g}, {y:g}) is outside frame {frame_idx} "
                f"({limit[0]:g} x {limit[1]:g} {unit})"
            )
    if box is not None:
        b = _as_float(box, "box").reshape(-1)
        if b.numel() != 4:
            raise VideoPromptError(f"a box is x0, y0, x1, y1; got {b.numel()} numbers")
        x0, y0, x1, y1 = b.tolist()
        if not (x1 >= x0 and y1 >= y0):
            raise VideoPromptError(f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) has x1 < x0 or y1 < y0")
        if min(x0, y0) < 0 or x1 > limit[0] or y1 > limit[1]:
            raise VideoPromptError(
                f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is outside frame {frame_idx} "
                f"({limit[0]:g} x {limit[1]:g} {unit})"
            )
        coords = torch.cat([b.reshape(1, 2, 2), coords], dim=1)
        lab = torch.cat([torch.tensor([[2, 3]], dtype=torch.int32), lab], dim=1)
    if normalize:
        coords = coords / torch.tensor([w, h])
    coords = coords * image_size
    return PointPrompt(coords.to(state.device), lab.to(state.device))


def _numel(value: Any) -> int:
    return int(np.asarray(value.cpu() if isinstance(value, torch.Tensor) else value).size)


def _as_float(value: Any, name: str) -> torch.Tensor:
    try:
        t = torch.as_tensor(
            value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value,
            dtype=torch.float32,
        )
    except (TypeError, ValueError):
        raise VideoPromptError(f"{name} must be numbers, got {value!r}") from None
    if not torch.isfinite(t).all():
        raise VideoPromptError(f"{name} must be finite numbers, got {t.tolist()}")
    return t


def _as_int(value: Any, name: str) -> torch.Tensor:
    t = _as_float(value, name)
    if (t != t.round()).any():
        raise VideoPromptError(f"{name} must be integers, got {t.tolist()}")
    return t.to(torch.int32)
