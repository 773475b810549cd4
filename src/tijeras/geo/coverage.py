"""A coverage: objects as polygons that never overlap and share their common edges.

Everything mode returns masks that may overlap (a roof and the building it is part of) and
that usually stop a pixel or two short of their neighbours. A *coverage* gives every pixel to
at most one object and closes those thin gaps, so neighbouring fields or parcels share one
boundary, as a land-cover map needs:

1. **Overlaps**: a pixel claimed by several objects goes to the smallest of them (an object
   inside a larger one stays whole; the larger one gets a hole there).
2. **Gaps**: an unclaimed pixel lying between two different objects at most ``gap`` pixels
   away on opposite sides (along a row, a column or a diagonal) is given to the nearer of
   them, growing both sides one pixel at a time; open background next to a single object,
   and the open ends of a gap, are left alone. Nodata is never filled.
3. The label image is traced in blocks of ``block`` pixels (each read with a margin wide enough
   for step 2 to see the same neighbourhood as a whole-image pass would), so memory is that of
   one block, and each object's pieces are unioned: pieces meet on pixel edges, exactly.

Every pixel then belongs to one polygon at most, and two neighbouring polygons have the same
vertices along their common boundary; simplify them with ``shapely.coverage_simplify`` (as
:func:`tijeras.geo.everything.everything_layer` does) to keep it that way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..automatic.frames import Frame, decode_framed, reframe
from ..automatic.tiling import TiledObject
from .errors import require
from .vectorize import ValidReader, _polygonal

__all__ = ["coverage_geometries"]


def coverage_geometries(
    objects: Sequence[TiledObject],
    height: int,
    width: int,
    *,
    valid: ValidReader | None = None,
    gap: int = 3,
    block: int = 2048,
) -> list[Any]:
    """One pixel-coordinate geometry per object (None for an object left with no pixel).

    Args:
        objects: framed masks (:func:`~tijeras.automatic.tiling.tiled_objects`).
        height, width: the image's size.
        valid: the valid pixels of a frame (None: no nodata).
        gap: widest gap between two objects that is closed, in pixels (0: none).
        block: side of the blocks the label image is built and traced in.
    """
    features = require("rasterio.features")
    shapely = require("shapely")
    from rasterio.transform import Affine

    if gap < 0 or block < 1:
        raise ValueError(f"gap must be >= 0 and block >= 1, got {gap}, {block}")
    frames = np.asarray([o.frame for o in objects], np.int64).reshape(-1, 4)
    areas = np.asarray([o.area for o in objects], np.int64)
    margin = 2 * gap + 1 if gap else 0
    pieces: list[list[Any]] = [[] for _ in objects]
    for by0 in range(0, height, block):
        for bx0 in range(0, width, block):
            inner = (bx0, by0, min(width, bx0 + block), min(height, by0 + block))
            outer = (
                max(0, inner[0] - margin),
                max(0, inner[1] - margin),
                min(width, inner[2] + margin),
                min(height, inner[3] + margin),
            )
            labels = _labels(objects, frames, areas, outer, valid, gap)
            if labels is None:
                continue
            ox, oy = inner[0] - outer[0], inner[1] - outer[1]
            core = np.ascontiguousarray(
                labels[oy : oy + inner[3] - inner[1], ox : ox + inner[2] - inner[0]]
            )
            shapes = features.shapes(
                core,
                mask=core > 0,
                connectivity=4,
                transform=Affine.translation(inner[0], inner[1]),
            )
            for shape, value in shapes:
                pieces[int(value) - 1].append(shapely.geometry.shape(shape))
    return [_join(parts) for parts in pieces]


def _join(parts: list[Any]) -> Any:
    if not parts:
        return None
    shapely = require("shapely")
    return parts[0] if len(parts) == 1 else _polygonal(shapely.union_all(parts))


def _labels(
    objects: Sequence[TiledObject],
    frames: np.ndarray,
    areas: np.ndarray,
    outer: Frame,
    valid: ValidReader | None,
    gap: int,
) -> np.ndarray | None:
    """Object number (1-based) of every pixel of ``outer``; 0 none, after overlaps and gaps."""
    x0, y0, x1, y1 = outer
    hit = np.flatnonzero(
        (frames[:, 0] < x1) & (frames[:, 2] > x0) & (frames[:, 1] < y1) & (frames[:, 3] > y0)
    )
    if not len(hit):
        return None
    labels = np.zeros((y1 - y0, x1 - x0), np.int32)
    for k in hit[np.argsort(-areas[hit], kind="stable")]:  # largest first: smaller ones win
        fx0, fy0, fx1, fy1 = (int(v) for v in frames[k])
        part = (max(x0, fx0), max(y0, fy0), min(x1, fx1), min(y1, fy1))
        mask = decode_framed(reframe(objects[k].rle, objects[k].frame, part))
        view = labels[part[1] - y0 : part[3] - y0, part[0] - x0 : part[2] - x0]
        view[mask] = k + 1
    keep = None if valid is None else valid(outer)
    if keep is not None:
        labels[~keep] = -1  # a barrier while gaps are filled
    if gap:
        _fill_gaps(labels, gap)
    labels[labels < 0] = 0
    return labels


def _fill_gaps(labels: np.ndarray, gap: int) -> None:
    """Give each empty pixel lying between two different objects to the nearer one, in place.

    A pixel is *between* two objects when, along one of the four axes through it (horizontal,
    vertical, two diagonals), the first object met within ``gap`` steps on one side differs
    from the first met on the other side. Those pixels are then claimed by growing every
    object one pixel at a time into them (ties go to the higher object number), so each side
    of a gap takes its half.
    """
    from scipy import ndimage

    between = np.zeros(labels.shape, bool)
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        ahead, behind = _first_hit(labels, dy, dx, gap), _first_hit(labels, -dy, -dx, gap)
        between |= (ahead > 0) & (behind > 0) & (ahead != behind)
    between &= labels == 0
    for _ in range(gap):
        if not between.any():
            break
        grown = ndimage.maximum_filter(np.maximum(labels, 0), size=3, mode="constant", cval=0)
        take = between & (grown > 0)
        labels[take] = grown[take]
        between &= ~take


def _first_hit(labels: np.ndarray, dy: int, dx: int, gap: int) -> np.ndarray:
    """Per pixel, the first non-zero label met stepping ``(dy, dx)`` up to ``gap`` times
    (0: none; -1: nodata met first)."""
    height, width = labels.shape
    hit = np.zeros(labels.shape, np.int32)
    searching = np.ones(labels.shape, bool)
    for k in range(1, gap + 1):
        oy, ox = k * dy, k * dx
        if abs(oy) >= height or abs(ox) >= width:
            break
        ahead = np.zeros(labels.shape, np.int32)
        ahead[max(0, -oy) : height - max(0, oy), max(0, -ox) : width - max(0, ox)] = labels[
            max(0, oy) : height - max(0, -oy), max(0, ox) : width - max(0, -ox)
        ]
        found = searching & (ahead != 0)
        hit[found] = ahead[found]
        searching &= ahead == 0
    return hit
