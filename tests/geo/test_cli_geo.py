"""The command line on rasters: vector layers out, map prompts in, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rasterio")
pyogrio = pytest.importorskip("pyogrio")
pyproj = pytest.importorskip("pyproj")

from geo.stub import write_geotiff
from typer.testing import CliRunner

from tijeras.cli.main import app

CLASSIC = ["--model", "classic"]


@pytest.fixture(scope="module")
def ortho(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600 x 400 RGB: grey ground, a red roof, a blue pool; 0.5 m pixels in EPSG:32631."""
    image = np.full((3, 400, 600), 110, np.uint8)
    image[:, 100:200, 100:250] = np.array([220, 40, 40])[:, None, None]
    image[:, 250:330, 380:520] = np.array([30, 60, 210])[:, None, None]
    return write_geotiff(tmp_path_factory.mktemp("cli") / "ortho.tif", image)


def run(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_user_error(result, *fragments: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def test_everything_writes_a_layer_in_the_raster_crs(ortho: Path, tmp_path: Path) -> None:
    out = tmp_path / "objects.gpkg"
    result = run(
        "everything",
        ortho,
        "--out",
        out,
        "--points-per-side",
        "8",
        *CLASSIC,
        "--tile",
        "256",
        "--tile-overlap",
        "64",
        "--simplify",
        "0.25",
    )
    assert result.exit_code == 0, result.output
    assert "ortho.tif: 600 x 400 px, 3 band(s) uint8, EPSG:32631" in result.stdout
    info = pyogrio.read_info(out)
    assert info["crs"] == "EPSG:32631" and info["features"] >= 2
    assert f"wrote {out} ({info['features']} objects, EPSG:32631)" in result.stdout


def test_everything_coverage_to_geojson(ortho: Path, tmp_path: Path) -> None:
    out = tmp_path / "cover.geojson"
    result = run(
        "everything",
        ortho,
        "--out",
        out,
        "--points-per-side",
        "8",
        *CLASSIC,
        "--coverage",
        "--coverage-gap",
        "2",
    )
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert document["crs"]["properties"]["name"].endswith("32631")
    assert "coverage" in result.stdout


def test_segment_with_a_lon_lat_click(ortho: Path, tmp_path: Path) -> None:
    x, y = 430000 + 175 * 0.5, 4582000 - 150 * 0.5  # the roof's centre
    lon, lat = pyproj.Transformer.from_crs("EPSG:32631", "EPSG:4326", always_xy=True).transform(
        x, y
    )
    out = tmp_path / "roof.geojson"
    result = run(
        "segment",
        ortho,
        "--point-geo",
        f"{lon},{lat}",
        "--crs",
        "EPSG:4326",
        "--out",
        out,
        *CLASSIC,
    )
    assert result.exit_code == 0, result.output
    feature = json.loads(out.read_text())["features"][0]
    assert feature["properties"]["area_px"] == pytest.approx(150 * 100, rel=0.1)
    assert "object 1: score" in result.stdout
    pixels = tmp_path / "pixel.shp"
    result = run("segment", ortho, "--box", "90,90,260,210", "--out", pixels, *CLASSIC)
    assert result.exit_code == 0, result.output
    assert pyogrio.read_info(pixels)["crs"] == "EPSG:32631"


def test_mistakes_are_one_error_line(ortho: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.gpkg"
    assert_user_error(
        run("everything", ortho, "--out", out, "--bands", "5", *CLASSIC),
        "band 5 does not exist: ortho.tif has bands 1-3",
    )
    assert_user_error(
        run("everything", ortho, "--out", out, "--bands", "1,2", *CLASSIC),
        "--bands takes 1 band (grey) or 3",
    )
    assert_user_error(
        run("everything", ortho, "--out", out, "--stretch", "98,2", *CLASSIC),
        "--stretch percentiles must satisfy",
    )
    assert_user_error(
        run("everything", ortho, "--out", tmp_path / "folder", "--coverage"),
        "--coverage: only for a raster written as a vector layer",
    )
    assert_user_error(
        run("everything", ortho, "--out", tmp_path / "no" / "x.gpkg", *CLASSIC), "does not exist"
    )
    assert_user_error(
        run("everything", tmp_path / "missing.tif", "--out", out, *CLASSIC), "raster not found"
    )
    assert_user_error(
        run(
            "segment",
            ortho,
            "--point-geo",
            "2.5,41.0",
            "--crs",
            "EPSG:4326",
            "--out",
            out,
            *CLASSIC,
        ),
        "point 2.5,41 (EPSG:4326) is outside ortho.tif",
    )
    assert_user_error(
        run("segment", ortho, "--point-geo", "1,2", "--crs", "EPSG:0", "--out", out, *CLASSIC),
        "unknown CRS 'EPSG:0'",
    )
    assert_user_error(
        run("segment", ortho, "--point", "900,10", "--out", out, *CLASSIC),
        "--point 900,10 is outside ortho.tif (600 x 400 px)",
    )
    assert_user_error(
        run(
            "segment",
            ortho,
            "--point-geo",
            "430010,4581990",
            "--out",
            tmp_path / "mask.png",
            *CLASSIC,
        ),
        "use one of .gpkg",
    )
    assert_user_error(
        run(
            "segment",
            ortho,
            "--point-geo",
            "430010,4581990",
            "--out",
            out,
            "--cutout",
            tmp_path / "c.png",
            *CLASSIC,
        ),
        "--cutout",
    )
    assert not out.exists()


def test_missing_geo_libraries_say_how_to_install(ortho: Path, tmp_path: Path, monkeypatch) -> None:
    import importlib

    from tijeras.geo import errors

    real = importlib.import_module

    def without_rasterio(name: str, *args):
        if name.split(".")[0] == "rasterio":
            raise ImportError(f"No module named {name!r}")
        return real(name, *args)

    monkeypatch.setattr(errors.importlib, "import_module", without_rasterio)
    result = run("everything", ortho, "--out", tmp_path / "x.gpkg", *CLASSIC)
    assert_user_error(result, "need rasterio, which is not installed", "pip install 'tijeras[geo]'")
