"""Where a raster lies on the map: its CRS and the affine transform from pixels to map units.

:class:`GeoReference` is a frozen, torch-free record; the web app keeps one per uploaded raster
and the vector writers take one to place masks on the map. Pixel coordinates follow GDAL's
convention: pixel ``(row, col)`` covers ``[col, col + 1) x [row, row + 1)``, so ``(0, 0)`` is
the outer corner of the first pixel and ``(col + 0.5, row + 0.5)`` its centre.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import GeoError

__all__ = ["GeoReference"]

Transform = tuple[float, float, float, float, float, float]
"""``(a, b, c, d, e, f)``: ``x = a * col + b * row + c`` and ``y = d * col + e * row + f``
(the order of rasterio's ``Affine``)."""


@dataclass(frozen=True)
class GeoReference:
    """A raster's size, CRS and pixel-to-map transform.

    Attributes:
        width: columns.
        height: rows.
        transform: ``(a, b, c, d, e, f)`` as in rasterio's ``Affine``.
        crs_wkt: the CRS as WKT, or None for a raster without one (its "map" units are then
            pixels, y down).
        crs_name: a short name for messages and GeoJSON (``EPSG:32631`` where one exists).
    """

    width: int
    height: int
    transform: Transform
    crs_wkt: str | None
    crs_name: str

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1:
            raise GeoError(f"a raster must have pixels, got {self.width} x {self.height}")
        a, b, _, d, e, _ = self.transform
        if not all(np.isfinite(self.transform)) or a * e - b * d == 0:
            raise GeoError(f"the raster's geotransform is not invertible: {self.transform}")

    # ------------------------------------------------------------------ conversions
    def pixel_to_map(self, cols: Any, rows: Any) -> tuple[np.ndarray, np.ndarray]:
        """Map coordinates of pixel coordinates (arrays of any shape)."""
        a, b, c, d, e, f = self.transform
        cols, rows = np.asarray(cols, np.float64), np.asarray(rows, np.float64)
        return a * cols + b * rows + c, d * cols + e * rows + f

    def map_to_pixel(self, xs: Any, ys: Any) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates ``(col, row)`` of map coordinates in the raster's CRS."""
        a, b, c, d, e, f = self.transform
        det = a * e - b * d
        xs, ys = np.asarray(xs, np.float64) - c, np.asarray(ys, np.float64) - f
        return (e * xs - b * ys) / det, (a * ys - d * xs) / det

    @property
    def pixel_area(self) -> float:
        """Area of one pixel in the CRS's units squared."""
        a, b, _, d, e, _ = self.transform
        return abs(a * e - b * d)

    @property
    def pixel_size(self) -> float:
        """Side of a pixel in map units (the geometric mean of its two sides)."""
        return float(np.sqrt(self.pixel_area))

    def bounds(self) -> tuple[float, float, float, float]:
        """``(xmin, ymin, xmax, ymax)`` of the raster's four corners in its CRS."""
        xs, ys = self.pixel_to_map([0, self.width, 0, self.width], [0, 0, self.height, self.height])
        return float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())

    def window(
        self, x0: int, y0: int, x1: int, y1: int, shape: tuple[int, int] | None = None
    ) -> GeoReference:
        """The reference of pixels ``[x0, x1) x [y0, y1)``, read as an image of ``shape``
        (h, w; default the window's own size: a smaller shape is a reduced read)."""
        a, b, _, d, e, _ = self.transform
        ox, oy = self.pixel_to_map(x0, y0)
        height, width = shape if shape is not None else (y1 - y0, x1 - x0)
        sx, sy = (x1 - x0) / width, (y1 - y0) / height
        return GeoReference(
            width=int(width),
            height=int(height),
            transform=(a * sx, b * sy, float(ox), d * sx, e * sy, float(oy)),
            crs_wkt=self.crs_wkt,
            crs_name=self.crs_name,
        )

    # ------------------------------------------------------------------ CRS
    @property
    def is_georeferenced(self) -> bool:
        return self.crs_wkt is not None

    def crs(self) -> Any:
        """The CRS as a ``pyproj.CRS`` (None without one)."""
        if self.crs_wkt is None:
            return None
        from .errors import require

        return require("pyproj").CRS.from_wkt(self.crs_wkt)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready description (for a web page): size, transform, CRS name and WKT."""
        return {
            "width": self.width,
            "height": self.height,
            "transform": list(self.transform),
            "crs": self.crs_name,
            "crs_wkt": self.crs_wkt,
            "bounds": list(self.bounds()),
        }

    @staticmethod
    def from_dataset(dataset: Any) -> GeoReference:
        """The reference of an open rasterio dataset."""
        crs = dataset.crs
        wkt = crs.to_wkt() if crs else None
        name = _crs_name(crs) if crs else "pixels"
        t = dataset.transform
        return GeoReference(
            width=int(dataset.width),
            height=int(dataset.height),
            transform=(t.a, t.b, t.c, t.d, t.e, t.f),
            crs_wkt=wkt,
            crs_name=name,
        )


def _crs_name(crs: Any) -> str:
    code = crs.to_epsg()  # None when no EPSG code matches
    if code:
        return f"EPSG:{code}"
    text = crs.to_string()
    return text if len(text) <= 80 else text[:77] + "..."
