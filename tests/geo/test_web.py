"""What the web app calls for GeoTIFF uploads: a preview with its georeference, GeoJSON out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rasterio")
pytest.importorskip("shapely")

from geo.stub import write_geotiff
from pycocotools import mask as mask_utils

from tijeras.geo import GeoError, is_tiff, objects_to_geojson, read_preview


def _upload(tmp_path: Path, width: int = 2000, height: int = 1000) -> bytes:
    cols = np.arange(width, dtype=np.uint16)[None, :].repeat(height, 0)
    data = np.stack([1000 * b + cols for b in range(1, 5)])
    return write_geotiff(tmp_path / "ms.tif", data).read_bytes()


def test_preview_of_chosen_bands_reduced_with_its_own_georeference(tmp_path: Path) -> None:
    data = _upload(tmp_path)
    assert is_tiff(data) and not is_tiff(b"\x89PNG\r\n\x1a\n")
    preview = read_preview(data, bands=(4, 3, 2), max_side=500)
    assert preview.rgb.shape == (250, 500, 3) and preview.rgb.dtype == np.uint8
    assert preview.bands == (4, 3, 2) and preview.scale == 4.0
    assert preview.band_count == 4 and preview.dtype == "uint16"
    assert preview.stretch is not None and preview.stretch.percentiles == (2.0, 98.0)
    assert preview.source.width == 2000
    # the preview covers the raster exactly: its corners are the raster's
    assert preview.reference.bounds() == pytest.approx(preview.source.bounds())
    assert preview.reference.pixel_size == pytest.approx(0.5 * 4)
    assert preview.reference.to_json()["crs"] == "EPSG:32631"


def test_kept_objects_as_geojson_in_the_raster_crs(tmp_path: Path) -> None:
    preview = read_preview(_upload(tmp_path), max_side=500)
    mask = np.zeros((250, 500), np.uint8)
    mask[10:20, 100:150] = 1
    compressed = mask_utils.encode(np.asfortranarray(mask))
    compressed["counts"] = compressed["counts"].decode("ascii")  # as the server stores it
    plain = {"size": [250, 500], "counts": [(100 * 250 + 10), 10, 250 * 500 - 100 * 250 - 20]}
    collection = objects_to_geojson(
        [{"rle": compressed, "name": "roof", "score": 0.93}, {"rle": plain, "name": "pole"}],
        preview.reference,
    )
    assert collection["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32631"
    roof, pole = collection["features"]
    assert roof["properties"]["name"] == "roof" and roof["properties"]["score"] == 0.93
    assert roof["properties"]["area_px"] == 500 and roof["properties"]["area"] == pytest.approx(
        2000.0
    )
    xs = [x for x, _ in roof["geometry"]["coordinates"][0]]
    ys = [y for _, y in roof["geometry"]["coordinates"][0]]
    # preview pixel (100, 10) is raster pixel (400, 40): 430000 + 400 * 0.5, 4582000 - 40 * 0.5
    assert (min(xs), max(ys)) == pytest.approx((430200.0, 4581980.0))
    assert (max(xs), min(ys)) == pytest.approx((430300.0, 4581960.0))
    assert pole["properties"]["area_px"] == 10


def test_bad_uploads_and_masks_are_named(tmp_path: Path) -> None:
    with pytest.raises(GeoError, match="cannot read upload.tif as a raster"):
        read_preview(b"II*\x00 broken")
    preview = read_preview(_upload(tmp_path, 300, 200))
    assert preview.scale == 1.0 and preview.rgb.shape == (200, 300, 3)
    wrong = mask_utils.encode(np.asfortranarray(np.ones((10, 10), np.uint8)))
    with pytest.raises(GeoError, match="object 1: its mask is"):
        objects_to_geojson([{"rle": wrong}], preview.reference)
