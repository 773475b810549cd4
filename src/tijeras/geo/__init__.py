"""Georeferenced rasters in, vector layers in the raster's CRS out, at any size.

Needs the ``geo`` extra (``pip install 'tijeras[geo]'``: rasterio, pyproj, shapely, pyogrio);
importing this package does not, and every function names the missing library.

::

    import tijeras
    from tijeras import geo

    model = tijeras.load_model("mobile-sam")
    layer = geo.everything("ortho.tif", model, tile_size=1024, overlap=256, simplify=0.2)
    layer.write("fields.gpkg")                       # or .geojson, .shp

    with geo.open_raster("ortho.tif", bands=(4, 3, 2), stretch=(2, 98)) as raster:
        clicks = geo.GeoPredictor(model, raster)
        roof = clicks.predict(points=[[2.1734, 41.3851]], crs="EPSG:4326")
        roof.write("roof.geojson")

See ``docs/geo.md``.
"""

from __future__ import annotations

from .errors import GEO_INSTALL, GeoError, MissingGeoLibrary
from .everything import everything, layer_from_objects, raster_layer
from .layer import VECTOR_SUFFIXES, GeoFeature, GeoLayer
from .predictor import GeoPredictor
from .prompts import PixelPrompts, parse_crs, to_pixels
from .raster import DEFAULT_PERCENTILES, GeoRaster, Stretch, open_raster
from .reference import GeoReference
from .web import GeoPreview, is_tiff, objects_to_geojson, read_preview

__all__ = [
    "DEFAULT_PERCENTILES",
    "GEO_INSTALL",
    "VECTOR_SUFFIXES",
    "GeoError",
    "GeoFeature",
    "GeoLayer",
    "GeoPredictor",
    "GeoPreview",
    "GeoRaster",
    "GeoReference",
    "MissingGeoLibrary",
    "PixelPrompts",
    "Stretch",
    "everything",
    "is_tiff",
    "layer_from_objects",
    "objects_to_geojson",
    "open_raster",
    "parse_crs",
    "raster_layer",
    "read_preview",
    "to_pixels",
]
