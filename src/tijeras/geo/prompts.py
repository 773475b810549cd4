"""Points and boxes in map coordinates, converted to raster pixels.

Coordinates are ``x, y`` in the order of the CRS's easting and northing: for EPSG:4326 that is
longitude, latitude (pyproj with ``always_xy``). Without a CRS they are in the raster's own
CRS. A prompt that lands outside the raster is an error that names the coordinate and the
raster's extent in the prompt's CRS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import GeoError, require
from .reference import GeoReference

__all__ = ["PixelPrompts", "parse_crs", "to_pixels"]


@dataclass(frozen=True)
class PixelPrompts:
    """Prompts in raster pixels (continuous; pixel ``(row, col)`` spans ``[col, col+1)``).

    Attributes:
        points: N x 2 xy, or None.
        labels: N labels (1 foreground, 0 background), with ``points``.
        box: x0, y0, x1, y1, or None.
    """

    points: np.ndarray | None
    labels: np.ndarray | None
    box: np.ndarray | None

    def extent(self) -> tuple[float, float, float, float]:
        """``(x0, y0, x1, y1)`` around every point and the box."""
        xy = []
        if self.points is not None:
            xy.append(self.points)
        if self.box is not None:
            xy.append(self.box.reshape(2, 2))
        stacked = np.concatenate(xy)
        return (
            float(stacked[:, 0].min()),
            float(stacked[:, 1].min()),
            float(stacked[:, 0].max()),
            float(stacked[:, 1].max()),
        )


def parse_crs(text: str) -> Any:
    """A ``pyproj.CRS`` from ``EPSG:4326``, a WKT, a PROJ string...; a GeoError names bad ones."""
    pyproj = require("pyproj")
    try:
        return pyproj.CRS.from_user_input(text)
    except pyproj.exceptions.CRSError as exc:
        raise GeoError(f"unknown CRS {text!r}: {exc}") from exc


def to_pixels(
    reference: GeoReference,
    *,
    points: Any = None,
    labels: Any = None,
    box: Any = None,
    crs: str | None = None,
    name: str = "the raster",
) -> PixelPrompts:
    """Convert map-coordinate prompts to raster pixels, checking they fall on the raster.

    Args:
        reference: the raster's georeference.
        points: N x 2 ``x, y`` in ``crs``.
        labels: N labels (default: all 1, foreground).
        box: ``x0, y0, x1, y1`` in ``crs`` (any two opposite corners).
        crs: the prompts' CRS (``EPSG:4326``...); None: the raster's.
        name: the raster's name, for messages.

    Raises:
        GeoError: a bad CRS, a raster without CRS given a ``crs``, malformed coordinates, or a
            prompt outside the raster.
    """
    if points is None and box is None:
        raise GeoError("no prompt: give points and/or a box")
    transform = _transformer(reference, crs, name)
    label_text = crs or reference.crs_name
    pixel_points = pixel_labels = pixel_box = None
    if points is not None:
        xy = _coordinates(points, "points", 2).reshape(-1, 2)
        pixel_points = np.stack(_to_pixel(reference, transform, xy, label_text), axis=1)
        for (x, y), (col, row) in zip(xy, pixel_points):
            _check_inside(reference, transform, col, row, f"point {x:.10g},{y:.10g}", crs, name)
        pixel_labels = (
            np.ones(len(xy), np.int64)
            if labels is None
            else _coordinates(labels, "labels", None).astype(np.int64).reshape(-1)
        )
        if len(pixel_labels) != len(xy):
            raise GeoError(f"{len(pixel_labels)} labels for {len(xy)} points")
    if box is not None:
        corners = _coordinates(box, "box", 4).reshape(2, 2)
        x0, x1 = sorted(corners[:, 0])
        y0, y1 = sorted(corners[:, 1])
        four = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]])
        cols, rows = _to_pixel(reference, transform, four, label_text)
        for x, y, col, row in zip(four[:, 0], four[:, 1], cols, rows):
            what = f"box corner {x:.10g},{y:.10g}"
            _check_inside(reference, transform, col, row, what, crs, name)
        pixel_box = np.array([cols.min(), rows.min(), cols.max(), rows.max()])
    return PixelPrompts(pixel_points, pixel_labels, pixel_box)


def _coordinates(value: Any, what: str, size: int | None) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if size is not None and (array.size == 0 or array.size % size or array.ndim > 2):
        raise GeoError(f"{what} must be numbers in groups of {size}, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise GeoError(f"{what} must be finite numbers, got {array.tolist()}")
    return array


def _transformer(reference: GeoReference, crs: str | None, name: str) -> Any:
    if crs is None:
        return None
    if reference.crs_wkt is None:
        raise GeoError(
            f"{name} has no CRS, so coordinates in {crs} cannot be placed on it; give pixel "
            "coordinates instead"
        )
    pyproj = require("pyproj")
    source = parse_crs(crs)
    target = reference.crs()
    if source.equals(target):
        return None
    return pyproj.Transformer.from_crs(source, target, always_xy=True)


def _to_pixel(
    reference: GeoReference, transform: Any, xy: np.ndarray, crs: str
) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = xy[:, 0], xy[:, 1]
    if transform is not None:
        xs, ys = transform.transform(xs, ys)
        xs, ys = np.asarray(xs, np.float64), np.asarray(ys, np.float64)
        bad = ~(np.isfinite(xs) & np.isfinite(ys))
        if bad.any():
            x, y = xy[int(np.flatnonzero(bad)[0])]
            raise GeoError(
                f"{x:.10g},{y:.10g} in {crs} has no position in the raster's CRS "
                f"({reference.crs_name}); are x and y swapped (x is longitude/easting)?"
            )
    return reference.map_to_pixel(xs, ys)


def _check_inside(
    reference: GeoReference,
    transform: Any,
    col: float,
    row: float,
    what: str,
    crs: str | None,
    name: str,
) -> None:
    if 0 <= col <= reference.width and 0 <= row <= reference.height:
        return
    xmin, ymin, xmax, ymax = reference.bounds()
    where = reference.crs_name
    if transform is not None and crs is not None:
        xmin, ymin, xmax, ymax = transform.transform_bounds(
            xmin, ymin, xmax, ymax, direction="INVERSE"
        )
        where = crs
    raise GeoError(
        f"{what} ({where}) is outside {name}, which covers x {xmin:.10g}..{xmax:.10g}, "
        f"y {ymin:.10g}..{ymax:.10g} in {where} (it falls on pixel {col:.1f},{row:.1f} of "
        f"{reference.width} x {reference.height})"
    )
