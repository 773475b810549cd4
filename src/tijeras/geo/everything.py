"""Everything mode on a georeferenced raster of any size: a vector layer in the raster's CRS.

:func:`everything` streams the raster tile by tile (:class:`~tijeras.geo.raster.GeoRaster`
is the :class:`~tijeras.automatic.tiling.TileSource`), lets the seam-free tile merge of
:func:`~tijeras.automatic.tiling.tiled_objects` join every object cut by a tile border into
one mask, and traces each object as one Polygon or MultiPolygon (:func:`layer_from_objects`):

- holes are kept, nodata is cut out, every object keeps its score, stability and area;
- ``simplify`` (map units) simplifies each outline, or, with ``coverage=True``, the whole
  coverage at once (``shapely.coverage_simplify``), so shared edges stay shared;
- ``coverage=True`` resolves overlaps and closes thin gaps between neighbours first
  (:mod:`tijeras.geo.coverage`).

Memory is one tile, one framed RLE per object and the traced polygons: never a raster of the
image's size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..automatic.tiling import TiledObject, tiled_objects
from .coverage import coverage_geometries
from .errors import GeoError, require
from .layer import GeoFeature, GeoLayer
from .raster import GeoRaster, Stretch
from .reference import GeoReference
from .vectorize import AreaMeter, ValidReader, framed_geometry, to_map

__all__ = ["everything", "layer_from_objects", "raster_layer"]


def everything(
    source: str | Path | GeoRaster,
    model: Any,
    *,
    options: dict[str, Any] | None = None,
    tile_size: int = 1024,
    overlap: int = 256,
    bands: Sequence[int] | None = None,
    stretch: tuple[float, float] | Stretch | None = None,
    simplify: float | None = None,
    coverage: bool = False,
    gap: int = 3,
    progress: Callable[[int, int], None] | None = None,
) -> GeoLayer:
    """Every object of a raster as a vector layer in its CRS.

    Args:
        source: a raster path, or an open :class:`GeoRaster` (then ``bands`` and ``stretch``
            are its own).
        model: a tijeras model (its everything mode, with ``options`` replacing its defaults)
            or a mask generator (an object with ``generate_records``).
        options: everything-mode options (:class:`~tijeras.EverythingOptions` names).
        tile_size, overlap: tiles in raster pixels (a raster no larger than one tile is one).
        bands, stretch: see :class:`~tijeras.geo.raster.GeoRaster`.
        simplify: outline tolerance in map units (None or 0: exact pixel edges).
        coverage: no overlaps between objects and no gaps up to ``gap`` pixels.
        gap: widest gap closed between neighbours with ``coverage``, in pixels.
        progress: ``callable(done, total)``, see :func:`~tijeras.automatic.tiling.generate_tiled`.
    """
    generator = _generator(model, options)
    if isinstance(source, GeoRaster):
        return raster_layer(
            source, generator, tile_size, overlap, simplify, coverage, gap, progress
        )
    with GeoRaster(source, bands=bands, stretch=stretch) as raster:
        return raster_layer(
            raster, generator, tile_size, overlap, simplify, coverage, gap, progress
        )


def raster_layer(
    raster: GeoRaster,
    generator: Any,
    tile_size: int = 1024,
    overlap: int = 256,
    simplify: float | None = None,
    coverage: bool = False,
    gap: int = 3,
    progress: Callable[[int, int], None] | None = None,
) -> GeoLayer:
    """:func:`everything` on an open raster with a ready mask generator."""
    objects = tiled_objects(generator, raster, tile_size, overlap, progress=progress)
    valid = _valid_reader(raster)
    return layer_from_objects(
        objects, raster.reference, valid=valid, simplify=simplify, coverage=coverage, gap=gap
    )


def layer_from_objects(
    objects: Sequence[TiledObject],
    reference: GeoReference,
    *,
    valid: ValidReader | None = None,
    simplify: float | None = None,
    coverage: bool = False,
    gap: int = 3,
) -> GeoLayer:
    """Trace framed masks (pixels of the raster of ``reference``) as a layer in its CRS.

    Objects left without a pixel (all nodata, or all given to smaller objects in a coverage)
    are dropped; ids count the features kept, in order.
    """
    shapely = require("shapely")
    if simplify is not None and simplify < 0:
        raise GeoError(f"simplify must be >= 0 map units, got {simplify:g}")
    if coverage:
        pixel_shapes = coverage_geometries(
            objects, reference.height, reference.width, valid=valid, gap=gap
        )
    else:
        pixel_shapes = [framed_geometry(o.rle, o.frame, valid) for o in objects]
    kept = [(o, g) for o, g in zip(objects, pixel_shapes) if g is not None]
    meter = AreaMeter(reference)
    mapped = [to_map(g, reference) for _, g in kept]
    square_metres = [meter.square_metres(g) for g in mapped]
    if simplify:
        if coverage:
            mapped = list(shapely.coverage_simplify(mapped, simplify, simplify_boundary=True))
        else:
            mapped = list(shapely.simplify(mapped, simplify, preserve_topology=True))
    features = []
    for index, ((obj, pixels), geometry, m2) in enumerate(zip(kept, mapped, square_metres)):
        area_px = round(pixels.area)
        features.append(
            GeoFeature(
                geometry=geometry,
                id=index + 1,
                score=float(obj.iou),
                stability=float(obj.stability),
                area=area_px * reference.pixel_area,
                area_m2=m2,
                area_px=area_px,
            )
        )
    return GeoLayer(tuple(features), reference)


def _valid_reader(raster: GeoRaster) -> ValidReader | None:
    if not raster.nodata_masked:
        return None
    return raster.valid


def _generator(model: Any, options: dict[str, Any] | None) -> Any:
    if hasattr(model, "generate_records"):
        if options:
            raise GeoError("options apply to a model; this is already a mask generator")
        return model
    if not hasattr(model, "mask_generator"):
        raise GeoError(
            f"{type(model).__name__} is neither a tijeras model nor a mask generator "
            "(an object with generate_records)"
        )
    chosen = model.everything_defaults.replace(**(options or {}))
    return model.mask_generator(chosen, output_mode="coco_rle")
