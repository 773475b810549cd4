"""Fixtures of the geospatial tests: the stand-in generator and small synthetic rasters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from geo.stub import BlobGenerator, write_geotiff


@pytest.fixture
def blobs() -> BlobGenerator:
    return BlobGenerator()


def scene_image(height: int, width: int, shapes: dict[str, tuple]) -> tuple[np.ndarray, dict]:
    """Grey objects on black: ("rect", x0, y0, x1, y1) exclusive, ("disc", cx, cy, r).

    Object k gets grey level 10 * (k + 1); the truth is one bool mask per name.
    """
    image = np.zeros((height, width), np.uint8)
    truth = {}
    yy, xx = np.mgrid[0:height, 0:width]
    for k, (name, shape) in enumerate(shapes.items()):
        if shape[0] == "rect":
            _, x0, y0, x1, y1 = shape
            mask = (xx >= x0) & (xx < x1) & (yy >= y0) & (yy < y1)
        else:
            _, cx, cy, r = shape
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        assert not image[mask].any(), f"{name} overlaps another shape"
        image[mask] = 10 * (k + 1)
        truth[name] = mask
    return image, truth


# 2500 x 1800 with tiles of 1024, overlap 256: columns start at 0, 738, 1476; rows 0, 388, 776.
HEIGHT, WIDTH = 1800, 2500
SHAPES = {
    "inside_one_tile": ("rect", 50, 50, 300, 300),
    "straddles_vertical_border": ("rect", 980, 80, 1150, 280),
    "whole_in_two_tiles": ("rect", 770, 40, 900, 200),
    "whole_in_four_tiles": ("disc", 880, 580, 90),
    "corner_disc": ("disc", 900, 1250, 380),
    "larger_than_a_tile": ("rect", 1300, 700, 2450, 1750),
    "bar_across_row_border": ("rect", 100, 1000, 450, 1030),
}


@pytest.fixture(scope="session")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A 3-band uint8 GeoTIFF (EPSG:32631, 0.5 m pixels) of SHAPES, with a hole in the
    large rectangle, and the truth masks."""
    pytest.importorskip("rasterio")
    image, truth = scene_image(HEIGHT, WIDTH, SHAPES)
    image[900:960, 1500:1600] = 0  # a hole
    truth["larger_than_a_tile"][900:960, 1500:1600] = False
    path = tmp_path_factory.mktemp("geo") / "scene.tif"
    write_geotiff(path, np.stack([image] * 3), tiled=True, blockxsize=256, blockysize=256)
    return path, truth
