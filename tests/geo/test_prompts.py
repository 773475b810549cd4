"""Prompts in map coordinates: any CRS through pyproj, errors that name the coordinate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rasterio")
pyproj = pytest.importorskip("pyproj")

from geo.stub import write_geotiff

from tijeras.geo import GeoError, GeoReference, open_raster, to_pixels

REFERENCE = GeoReference(
    width=400,
    height=300,
    transform=(0.5, 0.0, 430000.0, 0.0, -0.5, 4582000.0),
    crs_wkt=pyproj.CRS("EPSG:32631").to_wkt(),
    crs_name="EPSG:32631",
)
TO_LONLAT = pyproj.Transformer.from_crs("EPSG:32631", "EPSG:4326", always_xy=True)


def test_points_in_the_raster_crs_and_in_lon_lat() -> None:
    x, y = REFERENCE.pixel_to_map(120.5, 80.5)
    got = to_pixels(REFERENCE, points=[[x, y]])
    np.testing.assert_allclose(got.points, [[120.5, 80.5]])
    assert got.labels.tolist() == [1]
    lon, lat = TO_LONLAT.transform(x, y)
    got = to_pixels(REFERENCE, points=[[lon, lat], [lon, lat]], labels=[1, 0], crs="EPSG:4326")
    np.testing.assert_allclose(got.points, [[120.5, 80.5]] * 2, atol=1e-4)
    assert got.labels.tolist() == [1, 0]


def test_box_corners_in_any_order() -> None:
    x0, y0 = REFERENCE.pixel_to_map(10, 20)
    x1, y1 = REFERENCE.pixel_to_map(110, 220)
    got = to_pixels(REFERENCE, box=[x1, y0, x0, y1])
    assert got.box.tolist() == pytest.approx([10, 20, 110, 220])


def test_a_point_outside_names_the_coordinate_and_the_extent() -> None:
    lon, lat = TO_LONLAT.transform(*REFERENCE.pixel_to_map(200, 150))
    with pytest.raises(GeoError) as caught:
        to_pixels(REFERENCE, points=[[lon + 0.01, lat]], crs="EPSG:4326", name="ortho.tif")
    message = str(caught.value)
    assert f"point {lon + 0.01:.10g},{lat:.10g} (EPSG:4326) is outside ortho.tif" in message
    assert "which covers x 2.1" in message and "in EPSG:4326" in message
    with pytest.raises(GeoError, match=r"box corner .* is outside"):
        to_pixels(REFERENCE, box=[429990, 4581900, 430010, 4581950])


def test_lat_lon_swapped_is_an_error_not_a_wrong_place() -> None:
    lon, lat = TO_LONLAT.transform(*REFERENCE.pixel_to_map(200, 150))
    with pytest.raises(GeoError, match="outside|swapped"):
        to_pixels(REFERENCE, points=[[lat, lon]], crs="EPSG:4326")


def test_bad_crs_bad_numbers_and_rasters_without_crs(tmp_path: Path) -> None:
    with pytest.raises(GeoError, match="unknown CRS 'EPSG:999999'"):
        to_pixels(REFERENCE, points=[[0, 0]], crs="EPSG:999999")
    with pytest.raises(GeoError, match="finite"):
        to_pixels(REFERENCE, points=[[np.nan, 1.0]])
    with pytest.raises(GeoError, match="2 labels for 1 points"):
        to_pixels(REFERENCE, points=[[430010, 4581990]], labels=[1, 0])
    with pytest.raises(GeoError, match="no prompt"):
        to_pixels(REFERENCE)
    path = write_geotiff(tmp_path / "plain.tif", np.zeros((10, 10), np.uint8), crs=None)
    with open_raster(path) as raster, pytest.raises(GeoError, match="plain.tif has no CRS"):
        to_pixels(raster.reference, points=[[2.17, 41.38]], crs="EPSG:4326", name="plain.tif")
