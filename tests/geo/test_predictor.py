"""Prompts in map coordinates on a raster: a window around them, encoded once for many prompts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rasterio")
pyproj = pytest.importorskip("pyproj")
shapely = pytest.importorskip("shapely")

from geo.stub import write_geotiff

import tijeras
from tijeras.geo import GeoError, GeoPredictor, open_raster


@pytest.fixture(scope="module")
def roofs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3000 x 3000 RGB, grey ground with two red roofs far apart and a nodata corner."""
    image = np.full((3, 3000, 3000), 90, np.uint8)
    image[:, 200:300, 200:400] = np.array([220, 40, 40])[:, None, None]
    image[:, 2500:2600, 2600:2800] = np.array([220, 40, 40])[:, None, None]
    image[:, 2900:, :100] = 0
    path = tmp_path_factory.mktemp("roofs") / "roofs.tif"
    return write_geotiff(path, image, nodata=0)


def _map(raster, col: float, row: float) -> list[float]:
    x, y = raster.reference.pixel_to_map(col, row)
    return [float(x), float(y)]


def test_one_encoding_serves_every_prompt_inside_its_window(roofs: Path) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = tijeras.build_model("test-tiny")
    with open_raster(roofs) as raster:
        clicks = GeoPredictor(model, raster, context=512, cache_windows=2)
        first = clicks.predict(points=[_map(raster, 300, 250)])
        assert clicks.encodings == 1 and clicks.window.x1 - clicks.window.x0 == 512
        for col, row in ((320, 260), (400, 350), (250, 400)):
            clicks.predict(points=[_map(raster, col, row)])
        assert clicks.encodings == 1  # the same window: no new encoding
        clicks.predict(points=[_map(raster, 2700, 2550)])
        assert clicks.encodings == 2  # a far roof: its own window
        clicks.predict(points=[_map(raster, 310, 255)])
        assert clicks.encodings == 2  # back to the first window: its embedding was kept
        clicks.predict(points=[_map(raster, 1500, 1500)])
        clicks.predict(points=[_map(raster, 2700, 2550)])
        assert clicks.encodings == 4  # only two windows are kept
    assert first.reference.crs_name == "EPSG:32631"


def test_a_click_gives_the_object_as_a_polygon_in_the_crs(roofs: Path) -> None:
    model = tijeras.load_model("classic")
    with open_raster(roofs) as raster:
        clicks = GeoPredictor(model, raster)
        to_lonlat = pyproj.Transformer.from_crs("EPSG:32631", "EPSG:4326", always_xy=True)
        lon, lat = to_lonlat.transform(*_map(raster, 300, 250))
        layer = clicks.predict(points=[[lon, lat]], crs="EPSG:4326")
        assert len(layer) == 1
        roof = layer.features[0]
        truth = shapely.box(*_map(raster, 200, 300), *_map(raster, 400, 200))
        assert roof.geometry.intersection(truth).area / roof.geometry.union(truth).area > 0.9
        assert roof.area_px == pytest.approx(200 * 100, rel=0.1)
        assert roof.area == pytest.approx(roof.area_px * 0.25)
        box = [*_map(raster, 2580, 2620), *_map(raster, 2820, 2480)]
        layer = clicks.predict(box=box, simplify=0.5)
        far = layer.features[0].geometry
        truth = shapely.box(*_map(raster, 2600, 2600), *_map(raster, 2800, 2500))
        assert far.intersection(truth).area / far.union(truth).area > 0.9


def test_a_box_larger_than_the_context_is_read_reduced(roofs: Path) -> None:
    model = tijeras.load_model("classic")
    with open_raster(roofs) as raster:
        clicks = GeoPredictor(model, raster, context=256)
        layer = clicks.predict(box=[*_map(raster, 150, 350), *_map(raster, 450, 150)])
        assert clicks.window.scale > 1
        assert clicks.predictor.embedding.original_size[0] <= 256
        roof = layer.features[0]
        truth = shapely.box(*_map(raster, 200, 300), *_map(raster, 400, 200))
        assert roof.geometry.intersection(truth).area / roof.geometry.union(truth).area > 0.8
        assert roof.area_px == pytest.approx(200 * 100, rel=0.2)  # in raster pixels


def test_prompts_outside_or_on_nodata_are_named(roofs: Path) -> None:
    model = tijeras.load_model("classic")
    with open_raster(roofs) as raster:
        clicks = GeoPredictor(model, raster)
        with pytest.raises(GeoError, match="is outside roofs.tif"):
            clicks.predict(points=[_map(raster, 3100, 10)])
        with pytest.raises(GeoError, match="falls on nodata"):
            clicks.predict(points=[_map(raster, 50, 2950)])
        assert clicks.encodings == 1  # the nodata check needed the window, nothing more


def test_a_small_raster_is_encoded_whole(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    path = write_geotiff(tmp_path / "small.tif", np.full((3, 300, 500), 90, np.uint8))
    with open_raster(path) as raster:
        clicks = GeoPredictor(tijeras.build_model("test-tiny"), raster)
        clicks.predict(points=[_map(raster, 10, 10)])
        clicks.predict(points=[_map(raster, 490, 290)])
        assert clicks.encodings == 1
        assert (clicks.window.x0, clicks.window.y0, clicks.window.x1, clicks.window.y1) == (
            0,
            0,
            500,
            300,
        )
