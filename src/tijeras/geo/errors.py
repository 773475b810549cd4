"""Errors of the geospatial layer, and the check that its optional libraries are installed."""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import TijerasError

__all__ = ["GEO_INSTALL", "GeoError", "MissingGeoLibrary", "require"]

GEO_INSTALL = "pip install 'tijeras[geo]'"
"""How to install rasterio, pyproj, shapely and pyogrio, the libraries :mod:`tijeras.geo` uses."""


class GeoError(TijerasError):
    """A raster, band, CRS, coordinate or vector file the geospatial commands cannot use."""


class MissingGeoLibrary(GeoError):
    """A library of the ``geo`` extra is not installed."""


def require(name: str) -> ModuleType:
    """Import one library of the ``geo`` extra, or say how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        top = name.split(".")[0]
        raise MissingGeoLibrary(
            f"georeferenced rasters need {top}, which is not installed: {GEO_INSTALL} "
            f"(rasterio, pyproj, shapely, pyogrio) ({exc})"
        ) from exc
