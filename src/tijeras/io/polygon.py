"""Polygons from masks with OpenCV contours, holes kept, and back to masks.

Coordinate convention: polygons use **pixel-corner** coordinates, in which pixel ``(row, col)``
covers ``[col, col + 1) x [row, row + 1)`` and its centre is ``(col + 0.5, row + 0.5)``. OpenCV
traces contours through the centres of the border pixels (integer coordinates in its
pixel-centre convention), so every contour point is shifted by ``+0.5``: a polygon vertex
lies on the centre of a border pixel, half a pixel inside the mask's outer edge. This is
the convention of COCO polygons, which are used as-is: pycocotools rasterises a polygon
as an area, so a mask decoded from these polygons loses about half a pixel along its
border (use RLEs for exact masks). :func:`polygons_to_mask` undoes the shift and
reproduces the mask exactly when the polygons were traced with ``tolerance=0``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from tijeras.errors import TijerasError

__all__ = ["Polygon", "mask_to_polygons", "polygons_to_coco", "polygons_to_mask"]

_SHIFT = 4
"""Fractional bits of the fixed-point vertices given to OpenCV's rasteriser."""


@dataclass(frozen=True, eq=False)
class Polygon:
    """One connected part of a mask: an outer ring and the rings of its holes.

    Attributes:
        exterior: K x 2 float array of (x, y) vertices in pixel-corner coordinates.
        holes: One M x 2 float array of (x, y) vertices per hole, same convention.
    """

    exterior: np.ndarray
    holes: list[np.ndarray] = field(default_factory=list)

    @property
    def area(self) -> float:
        """Area enclosed by the exterior minus the areas of the holes, in pixels."""
        return _ring_area(self.exterior) - sum(_ring_area(hole) for hole in self.holes)


def mask_to_polygons(mask: Any, tolerance: float = 1.0, min_area: float = 0.0) -> list[Polygon]:
    """Trace the parts of a mask as polygons with holes.

    Outer contours and their holes come from ``cv2.findContours`` with ``RETR_CCOMP``; a part
    lying inside another part's hole is a polygon of its own. Each ring is simplified with
    ``cv2.approxPolyDP`` when ``tolerance > 0``; a ring left with fewer than 3 vertices or
    enclosing less than ``min_area`` (its polygon area, in pixels) is dropped, and an
    exterior's holes are dropped with it. Isolated pixels and pairs always are, and with
    ``tolerance >= 1`` so are parts about 2 pixels thick or thinner (their ring collapses);
    ``tolerance=0`` keeps them.

    Args:
        mask: H x W array; non-zero (or True) is foreground.
        tolerance: Largest distance in pixels between a simplified ring and the contour;
            0 keeps every contour point.
        min_area: Smallest ring area kept, in pixels.

    Returns:
        The polygons, in OpenCV's contour order.

    Raises:
        TijerasError: If ``mask`` is not a non-empty H x W array or a parameter is negative.
    """
    pixels = _as_uint8_mask(mask)
    if tolerance < 0 or min_area < 0:
        raise TijerasError(f"tolerance and min_area must be >= 0, got {tolerance}, {min_area}")
    contours, hierarchy = cv2.findContours(pixels, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    if hierarchy is None:
        return []
    links = hierarchy[0]
    polygons = []
    for index in np.flatnonzero(links[:, 3] < 0):
        exterior = _ring(contours[index], tolerance, min_area)
        if exterior is None:
            continue
        holes = [_ring(contours[child], tolerance, min_area) for child in _children(links, index)]
        polygons.append(Polygon(exterior, [hole for hole in holes if hole is not None]))
    return polygons


def polygons_to_mask(polygons: Sequence[Polygon], height: int, width: int) -> np.ndarray:
    """Rasterise polygons with ``cv2.fillPoly``: exteriors filled, holes cleared.

    A hole ring runs through the object's pixels around the hole, so those border pixels
    are drawn back after the hole is cleared. Each polygon is drawn on its own so that a
    part lying inside another part's hole survives.

    Args:
        polygons: Polygons in pixel-corner coordinates, as from :func:`mask_to_polygons`.
        height: Output height H.
        width: Output width W.

    Returns:
        H x W bool array.
    """
    if height <= 0 or width <= 0:
        raise TijerasError(f"mask size must be positive, got height {height}, width {width}")
    mask = np.zeros((height, width), np.uint8)
    for polygon in polygons:
        _draw_polygon(mask, polygon)
    return mask.astype(bool)


def polygons_to_coco(polygons: Sequence[Polygon], include_holes: bool = False) -> list[list[float]]:
    """Flatten polygons into a COCO ``segmentation`` list: ``[x1, y1, x2, y2, ...]`` per ring.

    COCO polygons cannot express holes: pycocotools fills every ring and takes their union.
    Holes are therefore left out unless ``include_holes`` is True, in which case they are
    emitted as extra rings (which COCO readers draw as filled parts). The COCO writer in
    :mod:`tijeras.io.coco` stores a mask with holes as an RLE instead.

    Args:
        polygons: Polygons in pixel-corner coordinates.
        include_holes: Emit hole rings too.

    Returns:
        One flat list of floats per ring.
    """
    rings = []
    for polygon in polygons:
        rings.append(polygon.exterior)
        if include_holes:
            rings.extend(polygon.holes)
    return [[float(value) for value in ring.reshape(-1)] for ring in rings]


# --- helpers -------------------------------------------------------------------------------


def _as_uint8_mask(mask: Any) -> np.ndarray:
    """Validate an H x W mask and return it as a contiguous uint8 array of 0s and 1s."""
    array = np.asarray(mask)
    if array.ndim != 2 or array.size == 0 or array.dtype.kind not in "buif":
        raise TijerasError(
            f"mask must be a non-empty H x W array of bools or numbers, "
            f"got shape {tuple(array.shape)} and dtype {array.dtype}"
        )
    return np.ascontiguousarray(array != 0, dtype=np.uint8)


def _children(links: np.ndarray, parent: int) -> list[int]:
    """Indices of the contours whose parent is ``parent`` (its holes, with RETR_CCOMP)."""
    children = []
    child = int(links[parent, 2])
    while child >= 0:
        children.append(child)
        child = int(links[child, 0])
    return children


def _ring(contour: np.ndarray, tolerance: float, min_area: float) -> np.ndarray | None:
    """A simplified contour as K x 2 float pixel-corner vertices, or None if dropped."""
    if tolerance > 0:
        contour = cv2.approxPolyDP(contour, tolerance, True)
    points = contour.reshape(-1, 2).astype(np.float64) + 0.5
    if len(points) < 3 or _ring_area(points) < min_area:
        return None
    return points


def _ring_area(points: np.ndarray) -> float:
    """Area enclosed by a ring of (x, y) vertices (shoelace formula)."""
    return float(cv2.contourArea(points.astype(np.float32)))


def _fixed_point(points: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """Pixel-corner vertices as OpenCV fixed-point pixel-centre points relative to ``origin``."""
    centres = np.asarray(points, np.float64).reshape(-1, 2) - 0.5 - origin
    return np.round(centres * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)


def _draw_polygon(mask: np.ndarray, polygon: Polygon) -> None:
    """OR one polygon into ``mask``, drawn on a canvas cropped to its exterior's bounds."""
    height, width = mask.shape
    low = np.floor(polygon.exterior.min(axis=0) - 0.5).astype(int).clip(0, [width, height])
    high = np.ceil(polygon.exterior.max(axis=0) + 0.5).astype(int).clip(0, [width, height])
    if (high <= low).any():
        return
    canvas = np.zeros((high[1] - low[1], high[0] - low[0]), np.uint8)
    cv2.fillPoly(canvas, [_fixed_point(polygon.exterior, low)], 1, cv2.LINE_8, _SHIFT)
    if polygon.holes:
        holes = [_fixed_point(hole, low) for hole in polygon.holes]
        cv2.fillPoly(canvas, holes, 0, cv2.LINE_8, _SHIFT)
        cv2.polylines(canvas, holes, True, 1, 1, cv2.LINE_8, _SHIFT)
    window = mask[low[1] : high[1], low[0] : high[0]]
    np.bitwise_or(window, canvas, out=window)
