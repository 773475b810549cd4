"""Masks to polygons: pixel edges traced by GDAL, placed on the map by the raster's transform.

Masks are traced with ``rasterio.features.shapes`` (GDAL's polygonizer) in *pixel*
coordinates, where every vertex is an integer pixel corner: outlines follow pixel edges
exactly, holes are kept, and two pieces of one mask traced separately (column strips of a very
large object, blocks of a coverage) share their cut edges exactly, so shapely unions them
without slivers. Only then are the vertices mapped to the CRS (:func:`to_map`) and, when asked,
simplified in map units.

Pixels connect by their sides (4-connectivity): two parts of a mask touching only at a corner
are two polygons of one MultiPolygon, so every geometry is valid (OGC) as traced.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..automatic.frames import Frame, decode_framed, reframe
from .errors import require
from .reference import GeoReference

__all__ = ["AreaMeter", "framed_geometry", "mask_geometry", "to_map"]

MAX_PIXELS = 1 << 24
"""Pixels decoded at once when tracing one mask (larger masks are traced in column strips)."""

ValidReader = Callable[[Frame], "np.ndarray | None"]
"""Returns the valid (not nodata) pixels of a frame, or None when all are valid."""


def mask_geometry(mask: np.ndarray, x0: int = 0, y0: int = 0) -> Any:
    """The pixels of a bool mask placed at ``(x0, y0)`` as one shapely Polygon or
    MultiPolygon in pixel coordinates, or None when the mask is empty."""
    shapely = require("shapely")
    features = require("rasterio.features")
    from rasterio.transform import Affine

    if not mask.any():
        return None
    pixels = np.ascontiguousarray(mask, dtype=np.uint8)
    shapes = features.shapes(
        pixels, mask=pixels.view(bool), connectivity=4, transform=Affine.translation(x0, y0)
    )
    polygons = [shapely.geometry.shape(shape) for shape, _ in shapes]
    return polygons[0] if len(polygons) == 1 else shapely.MultiPolygon(polygons)


def framed_geometry(
    rle: dict[str, Any],
    frame: Frame,
    valid: ValidReader | None = None,
    max_pixels: int = MAX_PIXELS,
) -> Any:
    """The geometry (pixel coordinates) of a framed mask, nodata cut out, or None if empty.

    A mask whose frame holds more than ``max_pixels`` pixels is decoded and traced in
    column strips, whose pieces are then unioned.
    """
    shapely = require("shapely")
    x0, y0, x1, y1 = frame
    height = y1 - y0
    step = max(1, max_pixels // max(1, height))
    pieces = []
    for sx in range(x0, x1, step):
        strip = (sx, y0, min(x1, sx + step), y1)
        mask = decode_framed(rle if strip == tuple(frame) else reframe(rle, frame, strip))
        if valid is not None:
            keep = valid(strip)
            if keep is not None:
                mask &= keep
        piece = mask_geometry(mask, strip[0], strip[1])
        if piece is not None:
            pieces.append(piece)
    if not pieces:
        return None
    if len(pieces) == 1:
        return pieces[0]
    return _polygonal(shapely.union_all(pieces))


def _polygonal(geometry: Any) -> Any:
    """Polygons only (a union can return a collection holding lines where pieces touch)."""
    shapely = require("shapely")
    if geometry.geom_type in ("Polygon", "MultiPolygon"):
        return geometry
    parts = [g for g in shapely.get_parts(geometry) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else None


def to_map(geometry: Any, reference: GeoReference) -> Any:
    """A pixel-coordinate geometry in the raster's CRS (the affine transform per vertex)."""
    shapely = require("shapely")
    a, b, c, d, e, f = reference.transform

    def affine(xy: np.ndarray) -> np.ndarray:
        out = np.empty_like(xy)
        out[:, 0] = a * xy[:, 0] + b * xy[:, 1] + c
        out[:, 1] = d * xy[:, 0] + e * xy[:, 1] + f
        return out

    return shapely.transform(geometry, affine)


class AreaMeter:
    """Areas in square metres: geodesic for a geographic CRS, scaled for a projected one.

    ``square_metres(geometry)`` answers None for a raster without a CRS.
    """

    def __init__(self, reference: GeoReference) -> None:
        self._geod = None
        self._factor: float | None = None
        crs = reference.crs()
        if crs is None:
            return
        if crs.is_geographic:
            self._geod = crs.get_geod()
        else:
            unit = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
            self._factor = float(unit) ** 2

    def square_metres(self, geometry: Any) -> float | None:
        if self._geod is not None:
            area, _ = self._geod.geometry_area_perimeter(geometry)
            return abs(float(area))
        if self._factor is not None:
            return float(geometry.area) * self._factor
        return None
