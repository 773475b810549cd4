"""GeoTIFF uploads: the preview the page segments, its georeference, and GeoJSON of kept objects.

An uploaded TIFF with a CRS is opened by :func:`open_geotiff` (in memory: GDAL's ``/vsimem``,
never a file): the page gets :func:`~tijeras.geo.web.read_preview`'s RGB preview of the chosen
bands, and the entry keeps a :class:`GeoImage` with the preview's georeference and the uploaded
bytes (to show other bands later). A raster whose longer side is over ``max_side`` pixels is
read reduced (from its overviews when it has them, else resampled by GDAL with ``out_shape``),
so the preview's longer side is ``max_side``; the whole raster is never held at full resolution.
The preview's georeference is that of the reduced pixels, so the GeoJSON export places a mask
pixel by the reduced read's transform and the downscale is accounted for.

A TIFF without a CRS is an ordinary picture (Pillow opens it). Without rasterio (the ``geo``
extra), a TIFF with GeoTIFF tags is refused with a message saying how to install it.
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..geo.errors import GEO_INSTALL, GeoError, MissingGeoLibrary, require
from ..geo.reference import GeoReference
from ..geo.web import is_tiff, objects_to_geojson, read_preview

__all__ = ["GeoImage", "geo_available", "is_tiff", "objects_geojson", "open_geotiff", "render"]

# TIFF tags that make a TIFF a GeoTIFF: pixel scale, tie points, transformation, GeoKeys.
_GEOTIFF_TAGS = {33550, 33922, 34264, 34735}


@dataclass(frozen=True, eq=False)
class GeoImage:
    """What an image entry keeps of an uploaded GeoTIFF.

    Attributes:
        data: the uploaded file (bounded by the upload limit), read again to show other bands.
        name: the file's name, for messages.
        reference: georeference of the preview's pixels (the image the page shows).
        source: georeference of the full raster.
        scale: raster pixels per preview pixel (1: full resolution).
        bands: 1-based bands shown (one: grey, three: red, green, blue).
        band_count: bands in the raster.
        dtype: the raster's data type.
        stretch: the percentiles mapped to 0 and 255, or None (8-bit values as they are).
    """

    data: bytes
    name: str
    reference: GeoReference
    source: GeoReference
    scale: float
    bands: tuple[int, ...]
    band_count: int
    dtype: str
    stretch: tuple[float, float] | None

    def describe(self) -> dict[str, Any]:
        """The raster as the page shows it (``status`` answers carry it under ``geo``)."""
        return {
            "crs": self.source.crs_name,
            "bounds": list(self.source.bounds()),
            "raster_width": self.source.width,
            "raster_height": self.source.height,
            "pixel_size": self.source.pixel_size,
            "units": _units(self.source),
            "scale": round(self.scale, 6),
            "bands": list(self.bands),
            "band_count": self.band_count,
            "dtype": self.dtype,
            "stretch": None if self.stretch is None else list(self.stretch),
        }


def _units(reference: GeoReference) -> str:
    """The CRS's unit of length (``metre``, ``degree``...), or ``map units``."""
    try:
        crs = reference.crs()
        return str(crs.axis_info[0].unit_name) if crs is not None and crs.axis_info else "pixels"
    except Exception:  # noqa: BLE001  (a name for the page only; pyproj may lack the CRS)
        return "map units"


def geo_available() -> bool:
    """Whether rasterio (the ``geo`` extra) is installed, so GeoTIFFs open georeferenced."""
    return importlib.util.find_spec("rasterio") is not None


def has_geotiff_tags(data: bytes) -> bool:
    """Whether a TIFF's first directory holds GeoTIFF tags (read by Pillow from the header)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as picture:
            tags = set(getattr(picture, "tag_v2", {}).keys())
    except Exception:  # noqa: BLE001  (a TIFF Pillow cannot parse: say what could read it)
        return True
    return bool(tags & _GEOTIFF_TAGS)


def render(
    data: bytes,
    name: str,
    max_side: int,
    bands: Sequence[int] | None = None,
    stretch: tuple[float, float] | None = None,
) -> tuple[np.ndarray, GeoImage]:
    """The preview (h x w x 3 uint8) of chosen bands of a GeoTIFF's bytes, and its record.

    Raises:
        GeoError: not a raster, a band it lacks, bad percentiles, no valid pixel.
    """
    preview = read_preview(data, bands=bands, stretch=stretch, max_side=max_side, name=name)
    percentiles = None if preview.stretch is None else preview.stretch.percentiles
    geo = GeoImage(
        data=data,
        name=name,
        reference=preview.reference,
        source=preview.source,
        scale=preview.scale,
        bands=tuple(preview.bands),
        band_count=preview.band_count,
        dtype=preview.dtype,
        stretch=None if percentiles is None else (float(percentiles[0]), float(percentiles[1])),
    )
    return preview.rgb, geo


def open_geotiff(data: bytes, name: str, max_side: int) -> tuple[np.ndarray, GeoImage] | None:
    """The preview and record of an uploaded TIFF with a CRS; None for a TIFF without one (an
    ordinary picture).

    Raises:
        MissingGeoLibrary: a GeoTIFF and rasterio is not installed.
        GeoError: a GeoTIFF that cannot be read.
    """
    try:
        require("rasterio")
    except MissingGeoLibrary:
        if has_geotiff_tags(data):
            raise MissingGeoLibrary(
                f"{name} is a GeoTIFF; opening it with its georeference needs rasterio, which "
                f"is not installed: {GEO_INSTALL}"
            ) from None
        return None
    try:
        pixels, geo = render(data, name, max_side)
    except MissingGeoLibrary:
        raise
    except GeoError:
        if not has_geotiff_tags(data):
            return None  # not for GDAL; Pillow may read it
        raise
    if not geo.source.is_georeferenced:
        return None
    return pixels, geo


def objects_geojson(geo: GeoImage, objects: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """Kept objects (``(name, MaskEntry)`` pairs, masks of the preview) as a GeoJSON
    FeatureCollection in the raster's CRS."""
    records = [{"rle": mask.rle, "name": name, "score": mask.score} for name, mask in objects]
    return objects_to_geojson(records, geo.reference)
