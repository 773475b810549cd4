"""GeoTIFF uploads over the HTTP API: the preview (reduced for large rasters) keeps the
georeference, other bands and stretches are shown on request, kept objects come back as GeoJSON
in the raster's CRS, mistakes are named, and nothing is written to disk."""

from __future__ import annotations

import io
import os
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rasterio")
pytest.importorskip("shapely")

from geo.stub import write_geotiff
from helpers.server import client, upload, wait_ready
from PIL import Image

from tijeras.geo.errors import MissingGeoLibrary

ORIGIN = (430000.0, 4582000.0)  # write_geotiff's corner, EPSG:32631, 0.5 m pixels
WIDTH, HEIGHT, SIDE = 600, 400, 300  # previewed at half size


def _multiband(tmp_path: Path) -> bytes:
    """Four uint16 bands: a gradient with a bright field, different in every band."""
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    bands = []
    for b in range(1, 5):
        band = (200 * b + cols + rows).astype(np.uint16)
        band[100:220, 150:330] += np.uint16(3000 * b)
        bands.append(band)
    return write_geotiff(tmp_path / "field.tif", np.stack(bands)).read_bytes()


@pytest.fixture(scope="module")
def tiff(tmp_path_factory) -> bytes:
    return _multiband(tmp_path_factory.mktemp("geo"))


@pytest.fixture(scope="module")
def api(tiff: bytes):
    with client(geo_preview_side=SIDE) as c:
        yield c, upload(c, tiff, "field.tif")


def _coords(geometry: dict) -> np.ndarray:
    rings = (
        geometry["coordinates"]
        if geometry["type"] == "Polygon"
        else [ring for polygon in geometry["coordinates"] for ring in polygon]
    )
    return np.array([xy for ring in rings for xy in ring])


def test_a_geotiff_opens_as_a_reduced_preview_with_its_georeference(api) -> None:
    c, status = api
    geo = status["geo"]
    assert status["status"] == "ready" and (status["width"], status["height"]) == (300, 200)
    assert geo["crs"] == "EPSG:32631" and geo["scale"] == 2.0
    assert (geo["raster_width"], geo["raster_height"]) == (WIDTH, HEIGHT)
    assert geo["bands"] == [1, 2, 3] and geo["band_count"] == 4 and geo["dtype"] == "uint16"
    assert geo["stretch"] == [2.0, 98.0] and geo["pixel_size"] == pytest.approx(0.5)
    x0, y0 = ORIGIN
    assert geo["bounds"] == pytest.approx([x0, y0 - HEIGHT * 0.5, x0 + WIDTH * 0.5, y0])
    shown = c.get(f"/api/images/{status['id']}/preview.png")
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(shown.content)).size == (300, 200)


def test_kept_objects_download_as_geojson_in_map_units(api) -> None:
    c, status = api
    base = f"/api/images/{status['id']}"
    masks = c.post(f"{base}/segment", json={"points": [[120, 80]], "labels": [1]}).json()["masks"]
    mask = next(m for m in masks if m["area"] > 0)
    c.post(f"{base}/objects", json={"mask_id": mask["id"], "name": "field"}).raise_for_status()
    answer = c.get(f"{base}/objects.geojson")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/geo+json")
    assert 'filename="field-objects.geojson"' in answer.headers["content-disposition"]
    collection = answer.json()
    assert collection["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32631"
    (feature,) = collection["features"]
    props = feature["properties"]
    assert props["name"] == "field" and props["score"] == pytest.approx(mask["score"], abs=1e-4)
    # a preview pixel is 2 x 2 raster pixels of 0.5 m: 1 m2
    assert props["area_px"] == mask["area"] and props["area"] == pytest.approx(mask["area"])
    xy = _coords(feature["geometry"])
    x0, y0 = ORIGIN
    assert xy[:, 0].min() >= x0 and xy[:, 0].max() <= x0 + WIDTH * 0.5
    assert xy[:, 1].min() >= y0 - HEIGHT * 0.5 and xy[:, 1].max() <= y0
    # the mask's box, preview pixels -> map units through the downscale (1 m per preview pixel)
    bx, by, bw, bh = mask["bbox"]
    extent = [xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max()]
    assert extent == pytest.approx([x0 + bx, y0 - by - bh, x0 + bx + bw, y0 - by])


def test_other_bands_are_shown_and_the_objects_stay(api) -> None:
    c, status = api
    base = f"/api/images/{status['id']}"
    before = c.get(f"{base}/preview.png").content
    kept = c.get(f"{base}/objects").json()["objects"]
    answer = c.post(f"{base}/geo/view", json={"bands": [4, 3, 2], "stretch": [5, 95]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] in ("queued", "encoding", "ready")
    ready = wait_ready(c, status["id"])
    assert ready["status"] == "ready" and ready["geo"]["bands"] == [4, 3, 2]
    assert ready["geo"]["stretch"] == [5.0, 95.0] and ready["geo"]["crs"] == "EPSG:32631"
    assert (ready["width"], ready["height"]) == (300, 200)
    assert c.get(f"{base}/preview.png").content != before
    assert c.get(f"{base}/objects").json()["objects"] == kept
    grey = c.post(f"{base}/geo/view", json={"bands": [2]})
    assert grey.status_code == 200 and wait_ready(c, status["id"])["geo"]["bands"] == [2]
    assert c.post(f"{base}/segment", json={"points": [[50, 50]], "labels": [1]}).status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"bands": [5]}, "band 5 does not exist: field.tif has bands 1-4"),
        ({"bands": [0]}, "bands are numbered from 1"),
        ({"bands": [1, 2]}, "give 1 band (grey) or 3 bands"),
        ({"bands": [1], "stretch": [60, 10]}, "0 <= low < high <= 100"),
    ],
)
def test_bad_bands_are_named(api, body: dict, message: str) -> None:
    c, status = api
    answer = c.post(f"/api/images/{status['id']}/geo/view", json=body)
    assert answer.status_code == 422 and message in answer.json()["detail"]
    assert c.get(f"/api/images/{status['id']}").json()["status"] == "ready"


def test_pictures_without_a_crs_have_no_geojson(api, tmp_path: Path) -> None:
    c, _ = api
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 30)).save(out, format="PNG")
    picture = upload(c, out.getvalue(), "photo.png")
    assert picture["geo"] is None
    answer = c.get(f"/api/images/{picture['id']}/objects.geojson")
    assert answer.status_code == 409 and "photo.png is not georeferenced" in answer.json()["detail"]
    assert c.post(f"/api/images/{picture['id']}/geo/view", json={"bands": [1]}).status_code == 409
    # a TIFF without a CRS is an ordinary picture
    plain = write_geotiff(tmp_path / "plain.tif", np.full((3, 30, 40), 90, np.uint8), crs=None)
    status = upload(c, plain.read_bytes(), "plain.tif")
    assert status["geo"] is None and (status["width"], status["height"]) == (40, 30)


def test_a_single_band_float_raster_is_grey_and_stretched(api, tmp_path: Path) -> None:
    c, _ = api
    depth = np.linspace(-40.0, -2.0, 120 * 80, dtype=np.float32).reshape(80, 120)
    sonar = write_geotiff(tmp_path / "sonar.tif", depth, nodata=-9999.0).read_bytes()
    status = upload(c, sonar, "sonar.tif")
    assert status["geo"]["bands"] == [1] and status["geo"]["band_count"] == 1
    assert status["geo"]["dtype"] == "float32" and status["geo"]["stretch"] == [2.0, 98.0]
    assert status["geo"]["scale"] == 1.0 and (status["width"], status["height"]) == (120, 80)


def test_without_rasterio_a_geotiff_names_the_extra(api, tiff: bytes, monkeypatch) -> None:
    c, _ = api

    def missing(name: str):
        raise MissingGeoLibrary(f"{name} is not installed")

    monkeypatch.setattr("tijeras.server.geo.require", missing)
    answer = c.post("/api/images", content=tiff, headers={"X-Filename": "field.tif"})
    assert answer.status_code == 415
    detail = answer.json()["detail"]
    assert "field.tif is a GeoTIFF" in detail and "pip install 'tijeras[geo]'" in detail


_WRITES: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if _WRITES is None:
        return
    if (
        event == "open"
        and len(args) > 1
        and isinstance(args[1], str)
        and set(args[1]) & set("wax+")
    ):
        _WRITES.append(os.fsdecode(args[0]))
    elif event in ("os.mkdir", "tempfile.mkstemp", "tempfile.mkdtemp"):
        _WRITES.append(f"{event} {args!r}")


sys.addaudithook(_audit)


def test_a_geotiff_visit_writes_no_file(tiff: bytes, tmp_path: Path, monkeypatch) -> None:
    """GDAL reads the upload from memory (/vsimem): Python opens no file for writing, and no
    file appears in the temporary, working or cache folders (GDAL writes from C, so the folders
    are listed too)."""
    global _WRITES
    temp, work = tmp_path / "tmp", tmp_path / "work"
    temp.mkdir()
    work.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setenv("CPL_TMPDIR", str(temp))
    monkeypatch.chdir(work)

    def listing() -> set[str]:
        return {os.path.join(r, n) for r, d, f in os.walk(tmp_path) for n in d + f}

    with client(geo_preview_side=SIDE, cache=str(tmp_path / "cache")) as c:
        before = listing()
        _WRITES = []
        try:
            status = upload(c, tiff, "field.tif")
            base = f"/api/images/{status['id']}"
            mask = c.post(f"{base}/segment", json={"points": [[40, 40]], "labels": [1]}).json()
            c.post(f"{base}/objects", json={"mask_id": mask["masks"][0]["id"], "name": "x"})
            c.post(f"{base}/geo/view", json={"bands": [4, 3, 2]}).raise_for_status()
            wait_ready(c, status["id"])
            assert c.get(f"{base}/preview.png").status_code == 200
            assert c.get(f"{base}/objects.geojson").status_code == 200
            writes = list(_WRITES)
        finally:
            _WRITES = None
        assert listing() == before
        assert writes == []


def test_a_large_raster_is_previewed_reduced_without_reading_it_whole(tmp_path: Path) -> None:
    """10,000 x 7,500 pixels (75 MB as one band, 225 MB as RGB) become a 2048 x 1536 preview;
    the Python heap never holds the raster at full size (GDAL reads it reduced)."""
    rows, cols = np.mgrid[0:7500, 0:10000].astype(np.uint16)
    band = ((rows // 50 + cols // 50) % 7 * 30).astype(np.uint8)
    del rows, cols
    big = write_geotiff(tmp_path / "big.tif", band, tiled=True, compress="deflate").read_bytes()
    del band
    with client() as c:
        tracemalloc.start()
        try:
            answer = c.post("/api/images", content=big, headers={"X-Filename": "big.tif"})
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert answer.status_code == 201, answer.text
        status = answer.json()
        assert (status["width"], status["height"]) == (2048, 1536)
        assert status["geo"]["scale"] == pytest.approx(10000 / 2048)
        assert status["geo"]["raster_width"] == 10000 and status["geo"]["bands"] == [1]
        assert peak < len(big) + 40_000_000, f"{peak / 1e6:.0f} MB traced"
        wait_ready(c, status["id"])
