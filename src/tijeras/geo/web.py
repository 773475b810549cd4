"""What the web app needs for GeoTIFF uploads: a preview to segment, GeoJSON of kept objects.

The page works on one RGB image per upload. For a GeoTIFF that image is
:func:`read_preview`'s: the chosen bands, stretched to 8 bits, reduced so its longest side is
at most ``max_side`` (read from the overviews when the file has them), together with the
:class:`~tijeras.geo.reference.GeoReference` *of the preview's pixels*. Masks the page keeps
are COCO RLEs of the preview; :func:`objects_to_geojson` places them on the map in the
raster's CRS. Everything happens in memory (GDAL's ``/vsimem``): no file is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import GeoError, require
from .layer import GeoFeature, GeoLayer
from .raster import GeoRaster, Stretch
from .reference import GeoReference
from .vectorize import AreaMeter, mask_geometry, to_map

__all__ = ["GeoPreview", "is_tiff", "objects_to_geojson", "read_preview"]

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


@dataclass(frozen=True, eq=False)
class GeoPreview:
    """An uploaded raster as the page shows it.

    Attributes:
        rgb: h x w x 3 uint8, nodata black.
        reference: georeference of ``rgb``'s pixels (so masks of ``rgb`` map directly).
        source: georeference of the full raster.
        scale: raster pixels per preview pixel (1: full resolution).
        bands: the 1-based bands shown.
        band_count: how many bands the raster has (for a band picker).
        dtype: the raster's data type (``uint8``, ``uint16``, ``float32``...).
        stretch: the stretch applied, None for 8-bit data shown as is.
        valid: h x w bool of pixels that are not nodata, or None when all are.
    """

    rgb: np.ndarray
    reference: GeoReference
    source: GeoReference
    scale: float
    bands: tuple[int, ...]
    band_count: int
    dtype: str
    stretch: Stretch | None
    valid: np.ndarray | None


def is_tiff(data: bytes) -> bool:
    """Whether bytes start like a TIFF or BigTIFF (so they may be a GeoTIFF)."""
    return data[:4] in _TIFF_MAGIC


def read_preview(
    data: bytes,
    *,
    bands: Sequence[int] | None = None,
    stretch: tuple[float, float] | Stretch | None = None,
    max_side: int = 4096,
    name: str = "upload.tif",
) -> GeoPreview:
    """The preview of an uploaded GeoTIFF (bytes), read in memory.

    Args:
        data: the file's bytes.
        bands, stretch: see :class:`~tijeras.geo.raster.GeoRaster`.
        max_side: longest side of the preview; larger rasters are read reduced.
        name: used in messages.

    Raises:
        GeoError: not a raster GDAL reads, a band it lacks, no valid pixel.
    """
    rasterio = require("rasterio")
    if max_side < 1:
        raise GeoError(f"max_side must be >= 1, got {max_side}")
    try:
        memory = rasterio.MemoryFile(data, filename=name)
    except rasterio.errors.RasterioIOError as exc:
        raise GeoError(f"cannot read {name} as a raster: {exc}") from exc
    with memory, GeoRaster(memory.name, bands=bands, stretch=stretch) as raster:
        raster.name = name
        width, height = raster.width, raster.height
        scale = max(1.0, max(width, height) / max_side)
        shape = None
        if scale > 1.0:
            shape = (max(1, round(height / scale)), max(1, round(width / scale)))
        rgb, valid = raster.read_rgb((0, 0, width, height), shape)
        h, w = rgb.shape[:2]
        reference = raster.reference.window(0, 0, width, height, (h, w))
        return GeoPreview(
            rgb=rgb,
            reference=reference,
            source=raster.reference,
            scale=width / w,
            bands=raster.bands,
            band_count=raster.band_count,
            dtype=raster.dtype,
            stretch=raster.stretch,
            valid=valid,
        )


def objects_to_geojson(
    objects: Sequence[Mapping[str, Any]],
    reference: GeoReference,
    *,
    simplify: float | None = None,
) -> dict[str, Any]:
    """Kept objects as a GeoJSON FeatureCollection in the raster's CRS.

    Args:
        objects: one mapping per object with ``rle`` (a COCO RLE of the preview, compressed or
            not), and optionally ``name`` and ``score``.
        reference: the preview's georeference (:attr:`GeoPreview.reference`).
        simplify: outline tolerance in map units.

    Returns:
        ``{"type": "FeatureCollection", "crs": ..., "features": [...]}``; each feature's
        properties: ``id``, ``name``, ``score``, ``area`` (CRS units squared), ``area_m2``,
        ``area_px`` (preview pixels).

    Raises:
        GeoError: an RLE whose size is not the preview's.
    """
    from pycocotools import mask as mask_utils

    shapely = require("shapely")
    meter = AreaMeter(reference)
    features: list[GeoFeature] = []
    names: list[Any] = []
    for index, obj in enumerate(objects):
        rle = dict(obj["rle"])
        size = [int(v) for v in rle.get("size", ())]
        if size != [reference.height, reference.width]:
            raise GeoError(
                f"object {index + 1}: its mask is {size[1:] + size[:1]} (w, h) but the image is "
                f"{reference.width} x {reference.height}"
            )
        if isinstance(rle["counts"], list):
            rle = mask_utils.frPyObjects(rle, *size)
        elif isinstance(rle["counts"], str):
            rle["counts"] = rle["counts"].encode("ascii")
        pixels = mask_geometry(mask_utils.decode(rle).astype(bool))
        if pixels is None:
            continue
        geometry = to_map(pixels, reference)
        square_metres = meter.square_metres(geometry)
        if simplify:
            geometry = shapely.simplify(geometry, simplify, preserve_topology=True)
        features.append(
            GeoFeature(
                geometry=geometry,
                id=len(features) + 1,
                score=float(obj.get("score", 0.0) or 0.0),
                stability=None,
                area=float(pixels.area) * reference.pixel_area,
                area_m2=square_metres,
                area_px=round(pixels.area),
            )
        )
        names.append(obj.get("name"))
    collection = GeoLayer(tuple(features), reference).to_geojson()
    for feature, name in zip(collection["features"], names):
        feature["properties"]["name"] = name
    return collection
