"""Tiled everything mode over a TileSource: windows read on demand, empty tiles skipped, and
images past COCO's 32-bit run lengths (4.29 gigapixels) handled through framed masks."""

from __future__ import annotations

import numpy as np
import pytest
from geo.stub import BlobGenerator

from tijeras.automatic.tiling import generate_tiled, tile_boxes, tiled_objects


class Sparse:
    """A huge grey image, black but for a few rectangles; tiles with nothing answer None."""

    def __init__(self, height: int, width: int, rects: list[tuple[int, int, int, int, int]]):
        self.height, self.width, self.rects = height, width, rects
        self.reads = 0

    def read(self, box):
        x0, y0, x1, y1 = box
        self.reads += 1
        hits = [r for r in self.rects if r[0] < x1 and r[2] > x0 and r[1] < y1 and r[3] > y0]
        if not hits:
            return None
        tile = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
        for rx0, ry0, rx1, ry1, value in hits:
            tile[max(ry0, y0) - y0 : min(ry1, y1) - y0, max(rx0, x0) - x0 : min(rx1, x1) - x0] = (
                value
            )
        return tile


def test_a_70000_px_square_image_beyond_32_bit_runs() -> None:
    side = 70_000  # 4.9 gigapixels: a full-image COCO RLE would overflow its uint32 counts
    tiles = tile_boxes(side, side, 1024, 256)
    x_edge = tiles[60][2]  # the right edge of a tile far from the origin
    source = Sparse(
        side,
        side,
        [
            (
                x_edge - 100,
                69_000,
                x_edge + 150,
                69_400,
                50,
            ),  # across a vertical border, at the bottom
            (10, 10, 60, 60, 80),
        ],
    )
    stub = BlobGenerator()
    objects = tiled_objects(stub, source, 1024, 256)
    assert source.reads == len(tiles) and stub.tiles == 4 + 1  # 4 tiles see the bar, 1 the square
    areas = sorted(obj.area for obj in objects)
    assert areas == [50 * 50, 250 * 400]
    big = max(objects, key=lambda o: o.area)
    assert big.frame == (x_edge - 100, 69_000, x_edge + 150, 69_400)
    assert big.mask().all() and len(big.tiles) == 4  # two tile columns, two tile rows


def test_an_array_and_the_same_image_as_a_source_agree() -> None:
    image = np.zeros((700, 900, 3), np.uint8)
    image[100:300, 350:600] = 40
    image[500:650, 20:880] = 90
    from tijeras.automatic.tiling import ArrayTiles

    a = generate_tiled(BlobGenerator(), image, tile_size=400, overlap=100)
    b = generate_tiled(BlobGenerator(), ArrayTiles(image), tile_size=400, overlap=100)
    assert [r["segmentation"] for r in a] == [r["segmentation"] for r in b]
    assert sorted(r["area"] for r in a) == [200 * 250, 150 * 860]


def test_a_bad_source_is_named() -> None:
    with pytest.raises(TypeError, match="TileSource"):
        tiled_objects(BlobGenerator(), object(), 1024, 256)

    class Wrong:
        height, width = 100, 100

        def read(self, box):
            return np.zeros((10, 10, 3), np.uint8)

    with pytest.raises(ValueError, match=r"gave a \(10, 10, 3\) uint8 array for tile"):
        tiled_objects(BlobGenerator(), Wrong(), 64, 16)
