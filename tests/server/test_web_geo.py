"""A GeoTIFF in a real browser on a real server: the upload is shown as the server's preview
with where it lies on the map, other bands can be shown, and the kept objects download as
GeoJSON in the raster's CRS, named after the image."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rasterio")

from geo.stub import write_geotiff
from helpers.web import click_object, count_painted, open_file


def _multiband(path: Path) -> Path:
    rows, cols = np.mgrid[0:300, 0:400]
    bands = [(150 * b + cols + rows).astype(np.uint16) for b in range(1, 5)]
    for b, band in enumerate(bands, 1):
        band[80:200, 120:260] += np.uint16(2500 * b)
    return write_geotiff(path, np.stack(bands))


def test_open_a_geotiff_keep_an_object_and_download_geojson(page, tmp_path: Path) -> None:
    tiff = _multiband(tmp_path / "ortho.tif")
    open_file(page, tiff)
    page.wait_for_selector("#geo-section:not([hidden])")
    info = page.inner_text("#geo-info")
    assert "EPSG:32631" in info and "400 x 300 px" in info and "bands 1,2,3 of 4" in info
    page.wait_for_function("document.getElementById('image').naturalWidth > 0")
    size = page.evaluate(
        "(i => [i.naturalWidth, i.naturalHeight])(document.getElementById('image'))"
    )
    assert size == [400, 300]  # the browser shows the server's PNG preview of the TIFF
    assert page.locator("#dl-geojson").is_disabled()

    click_object(page, 0.5, 0.45)
    page.fill("#object-name", "field")
    page.press("#object-name", "Enter")
    page.wait_for_function("document.querySelectorAll('#objects li').length === 1")
    assert count_painted(page, "objects-canvas") > 0
    with page.expect_download() as download_info:
        page.click("#dl-geojson")
    download = download_info.value
    assert download.suggested_filename == "ortho-objects.geojson"
    collection = json.loads(Path(download.path()).read_text())
    assert collection["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32631"
    (feature,) = collection["features"]
    assert feature["properties"]["name"] == "field"
    geometry = feature["geometry"]
    polygons = geometry["coordinates"]
    if geometry["type"] == "Polygon":
        polygons = [polygons]
    ring = np.array([xy for polygon in polygons for ring in polygon for xy in ring])
    assert 430000 <= ring[:, 0].min() and ring[:, 0].max() <= 430000 + 400 * 0.5
    assert 4582000 - 300 * 0.5 <= ring[:, 1].min() and ring[:, 1].max() <= 4582000

    # other bands: the preview is read and encoded again; the object stays
    page.select_option("#geo-r", "4")
    page.select_option("#geo-b", "2")
    page.click("#geo-apply")
    page.wait_for_function(
        "document.getElementById('geo-info').textContent.includes('bands 4,2,2')"
    )
    page.wait_for_selector("#stage[data-ready='1']", timeout=60_000)
    assert page.locator("#objects li").count() == 1
    assert "preview.png?v=" in page.get_attribute("#image", "src")
