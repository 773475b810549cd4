"""Reading rasters for the model: bands, percentile stretch, nodata, windows, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from geo.stub import write_geotiff
from rasterio.enums import ColorInterp

from tijeras.geo import GeoError, Stretch, open_raster


def _multispectral(path: Path, **options) -> Path:
    """4 uint16 bands, 300 x 500: band b holds 1000 * b + column."""
    cols = np.arange(500, dtype=np.uint16)[None, :].repeat(300, 0)
    data = np.stack([1000 * b + cols for b in range(1, 5)])
    return write_geotiff(path, data, **options)


def test_default_bands_follow_the_colour_interpretation(tmp_path: Path) -> None:
    path = _multispectral(tmp_path / "bgrn.tif")
    with rasterio.open(path, "r+") as dataset:
        dataset.colorinterp = [
            ColorInterp.blue,
            ColorInterp.green,
            ColorInterp.red,
            ColorInterp.undefined,
        ]
    with open_raster(path) as raster:
        assert raster.bands == (3, 2, 1)
    plain = _multispectral(tmp_path / "plain.tif")
    with open_raster(plain) as raster:
        assert raster.bands == (1, 2, 3)
    grey = write_geotiff(tmp_path / "grey.tif", np.zeros((20, 20), np.uint8))
    with open_raster(grey) as raster:
        assert raster.bands == (1,)
        rgb = raster.read((0, 0, 20, 20))
        assert rgb.shape == (20, 20, 3) and rgb.dtype == np.uint8


def test_an_alpha_band_masks_instead_of_colouring(tmp_path: Path) -> None:
    data = np.full((4, 50, 60), 120, np.uint8)
    data[3] = 255
    data[3, :, :20] = 0  # transparent on the left
    path = write_geotiff(tmp_path / "rgba.tif", data, photometric="RGB", alpha="YES")
    with open_raster(path) as raster:
        assert raster.bands == (1, 2, 3)
        assert raster.nodata_masked
        rgb, valid = raster.read_rgb((0, 0, 60, 50))
        assert not valid[:, :20].any() and valid[:, 20:].all()
        assert (rgb[:, :20] == 0).all() and (rgb[:, 20:] == 120).all()
        assert raster.read((0, 0, 20, 50)) is None  # nothing valid: a tile to skip


def test_band_choices_are_checked_and_named(tmp_path: Path) -> None:
    path = _multispectral(tmp_path / "ms.tif")
    with pytest.raises(GeoError, match="band 5 does not exist: ms.tif has bands 1-4"):
        open_raster(path, bands=(5,))
    with pytest.raises(GeoError, match=r"give 1 band \(grey\) or 3 bands"):
        open_raster(path, bands=(1, 2))
    with open_raster(path, bands=(4, 3, 2)) as raster:
        assert raster.bands == (4, 3, 2)


def test_16_bit_stretch_is_one_mapping_for_the_whole_raster(tmp_path: Path) -> None:
    path = _multispectral(tmp_path / "ms.tif")
    with open_raster(path, bands=(1,)) as raster:
        stretch = raster.stretch
        assert stretch.percentiles == (2.0, 98.0)
        values = 1000 + np.arange(500)
        assert stretch.low[0] == pytest.approx(np.percentile(values, 2), abs=2)
        assert stretch.high[0] == pytest.approx(np.percentile(values, 98), abs=2)
        left = raster.read((0, 0, 300, 300))
        right = raster.read((200, 0, 500, 300))
        # column 220 is in both windows and gets the same grey in each: no seam of contrast
        assert np.array_equal(left[:, 220], right[:, 20])
        assert left[0, 0, 0] == 0 and right[0, -1, 0] == 255
    with open_raster(path, bands=(2,), stretch=(0, 100)) as raster:
        assert raster.stretch.low == (2000.0,) and raster.stretch.high == (2499.0,)
    with open_raster(path, bands=(2,), stretch=Stretch((2100.0,), (2200.0,))) as raster:
        column = raster.read((0, 0, 500, 1))[0, :, 0]
        assert column[100] == 0 and column[200] == 255 and column[150] == 128


def test_8_bit_rasters_are_used_as_they_are_unless_stretched(tmp_path: Path) -> None:
    data = np.arange(100, dtype=np.uint8)[None, :].repeat(10, 0) + 50
    path = write_geotiff(tmp_path / "byte.tif", data)
    with open_raster(path) as raster:
        assert raster.stretch is None
        assert np.array_equal(raster.read((0, 0, 100, 10))[..., 0], data)
    with open_raster(path, stretch=(0, 100)) as raster:
        assert raster.read((0, 0, 100, 10))[0, 0, 0] == 0


def test_nodata_is_left_out_of_the_stretch_and_the_pixels(tmp_path: Path) -> None:
    data = np.full((100, 100), 500, np.uint16)
    data[:, 50:] = 600
    data[:, :10] = 0  # nodata
    path = write_geotiff(tmp_path / "dem.tif", data, nodata=0)
    with open_raster(path, stretch=(0, 100)) as raster:
        assert raster.stretch.low == (500.0,) and raster.stretch.high == (600.0,)
        rgb, valid = raster.read_rgb((0, 0, 100, 100))
        assert not valid[:, :10].any() and valid[:, 10:].all()
        assert (rgb[:, 10:50] == 0).all() and (rgb[:, 50:] == 255).all()
        assert raster.valid((0, 0, 5, 5)) is not None and not raster.valid((0, 0, 5, 5)).any()


def test_reduced_reads_and_description(tmp_path: Path) -> None:
    path = _multispectral(tmp_path / "ms.tif")
    with open_raster(path, bands=(4, 3, 2)) as raster:
        rgb, valid = raster.read_rgb((0, 0, 500, 300), out_shape=(30, 50))
        assert rgb.shape == (30, 50, 3) and valid is None
        text = raster.describe()
        for fragment in (
            "ms.tif",
            "500 x 300 px",
            "4 band(s) uint16",
            "EPSG:32631",
            "band(s) 4,3,2",
            "percentiles 2..98",
        ):
            assert fragment in text
        with pytest.raises(GeoError, match="outside ms.tif"):
            raster.read((400, 0, 600, 10))


def test_files_that_are_not_rasters_are_named(tmp_path: Path) -> None:
    with pytest.raises(GeoError, match="raster not found"):
        open_raster(tmp_path / "missing.tif")
    text = tmp_path / "notes.tif"
    text.write_text("not an image")
    with pytest.raises(GeoError, match="cannot read notes.tif as a raster"):
        open_raster(text)
    complex_path = write_geotiff(tmp_path / "iq.tif", np.zeros((8, 8), np.complex64))
    with pytest.raises(GeoError, match="complex64"):
        open_raster(complex_path)
    with pytest.raises(GeoError, match="0 <= low < high <= 100"):
        open_raster(
            write_geotiff(tmp_path / "u16.tif", np.ones((8, 8), np.uint16)), stretch=(98, 2)
        )
