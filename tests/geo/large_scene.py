"""A 20,000 x 20,000 GeoTIFF whose objects straddle tile borders, and its labelling run.

The raster is written sparse (GDAL's ``SPARSE_OK``: blocks never written take no space and
read as zeros), block by block, so making it takes seconds and a few MB. Objects (discs and
rectangles, a few larger than a tile) are centred on tile borders and corners of the
1024 / 256 tiling, with at least ``SPACING`` pixels between any two.

Run as a script, it labels a raster with the stand-in generator and writes the layer and a
JSON line of figures (peak memory, time, tiles) to stdout::

    python tests/geo/large_scene.py RASTER OUT.gpkg [TILE OVERLAP]
"""

from __future__ import annotations

import json
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SIZE = 20_000
BLOCK = 512
SPACING = 6


@dataclass(frozen=True)
class Shape:
    kind: str  # "rect" or "disc"
    a: int  # rect: x0, y0, x1, y1 (exclusive); disc: cx, cy, r, r
    b: int
    c: int
    d: int
    value: int

    @property
    def box(self) -> tuple[int, int, int, int]:
        if self.kind == "rect":
            return self.a, self.b, self.c, self.d
        return self.a - self.c, self.b - self.c, self.a + self.c + 1, self.b + self.c + 1

    def mask(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """Pixels of the window ``[x0, x1) x [y0, y1)`` inside the shape."""
        yy, xx = np.mgrid[y0:y1, x0:x1]
        if self.kind == "rect":
            return (xx >= self.a) & (xx < self.c) & (yy >= self.b) & (yy < self.d)
        return (xx - self.a) ** 2 + (yy - self.b) ** 2 <= self.c**2

    def area(self) -> int:
        return int(self.mask(*self.box).sum())


def tile_edges(size: int, tile: int, overlap: int) -> list[int]:
    from tijeras.automatic.tiling import tile_boxes

    starts = sorted({box[0] for box in tile_boxes(tile, size, tile, overlap)})
    return sorted({s for s in starts if s > 0} | {s + tile for s in starts if s + tile < size})


def make_shapes(
    seed: int = 0,
    count: int = 700,
    size: int = SIZE,
    tile: int = 1024,
    overlap: int = 256,
    touching: int = 0,
) -> list[Shape]:
    """Objects centred on tile edges (x, y or both) of the tiling, three large ones and
    ``touching`` pairs of adjacent rectangles (neighbouring fields) across tile borders."""
    rng = np.random.default_rng(seed)
    edges = tile_edges(size, tile, overlap)
    shapes: list[Shape] = []
    boxes: list[tuple[int, int, int, int]] = []

    def add(kind: str, a: int, b: int, c: int, d: int) -> None:
        shape = Shape(kind, a, b, c, d, 1 + len(shapes) % 250)
        x0, y0, x1, y1 = shape.box
        if x0 < 0 or y0 < 0 or x1 > size or y1 > size:
            return
        for bx0, by0, bx1, by1 in boxes:
            if (
                x0 < bx1 + SPACING
                and bx0 < x1 + SPACING
                and y0 < by1 + SPACING
                and by0 < y1 + SPACING
            ):
                return
        shapes.append(shape)
        boxes.append(shape.box)

    for x0, y0, w, h in (
        (1500, 1500, 2600, 300),
        (6000, 9000, 2200, 2300),
        (12000, 3000, 400, 3100),
    ):
        add("rect", x0, y0, x0 + w, y0 + h)
    for _ in range(touching):  # two fields sharing a side, across a vertical tile border
        cx, cy = int(rng.choice(edges)), int(rng.integers(0, size))
        w, h = (int(v) for v in rng.integers(120, 500, size=2))
        before = len(shapes)
        add("rect", cx - w, cy, cx + w, cy + h)  # reserves the pair's box
        if len(shapes) > before:
            shapes.pop()
            split = cx + int(rng.integers(-w // 2, w // 2))
            shapes.append(Shape("rect", cx - w, cy, split, cy + h, 1 + len(shapes) % 250))
            shapes.append(Shape("rect", split, cy, cx + w, cy + h, 1 + len(shapes) % 250))
    attempts = 0
    while len(shapes) < count and attempts < 50 * count:
        attempts += 1
        on_x, on_y = rng.random() < 0.7, rng.random() < 0.5
        cx = int(rng.choice(edges)) if on_x else int(rng.integers(0, size))
        cy = int(rng.choice(edges)) if on_y else int(rng.integers(0, size))
        if rng.random() < 0.5:
            add("disc", cx, cy, int(rng.integers(15, 220)), 0)
        else:
            w, h = (int(v) for v in rng.integers(30, 520, size=2))
            add("rect", cx - w // 2, cy - h // 2, cx - w // 2 + w, cy - h // 2 + h)
    return shapes


def write_scene(path: Path, shapes: list[Shape], size: int = SIZE) -> Path:
    """A sparse, tiled, deflate-compressed one-band uint8 GeoTIFF of ``shapes``."""
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    touched: dict[tuple[int, int], list[Shape]] = {}
    for shape in shapes:
        x0, y0, x1, y1 = shape.box
        for by in range(y0 // BLOCK, (y1 - 1) // BLOCK + 1):
            for bx in range(x0 // BLOCK, (x1 - 1) // BLOCK + 1):
                touched.setdefault((bx, by), []).append(shape)
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 1,
        "dtype": "uint8",
        "crs": "EPSG:32631",
        "transform": Affine(0.5, 0.0, 430000.0, 0.0, -0.5, 4590000.0),
        "tiled": True,
        "blockxsize": BLOCK,
        "blockysize": BLOCK,
        "compress": "deflate",
        "sparse_ok": True,
    }
    with rasterio.open(path, "w", **profile) as dataset:
        for (bx, by), inside in sorted(touched.items()):
            x0, y0 = bx * BLOCK, by * BLOCK
            x1, y1 = min(size, x0 + BLOCK), min(size, y0 + BLOCK)
            block = np.zeros((y1 - y0, x1 - x0), np.uint8)
            for shape in inside:
                block[shape.mask(x0, y0, x1, y1)] = shape.value
            dataset.write(block, 1, window=Window(x0, y0, x1 - x0, y1 - y0))
    return path


def _peak_mb() -> float:
    """Peak resident memory of this process in MB: VmHWM of /proc (ru_maxrss keeps the
    parent's peak across fork and exec, so a child started by pytest would report pytest's)."""
    status = Path("/proc/self/status")
    lines = status.read_text().splitlines() if status.exists() else []
    for line in lines:
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(raster: str, out: str, tile: int = 1024, overlap: int = 256) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import pyogrio  # noqa: F401  (imported before the baseline is taken)
    import shapely  # noqa: F401
    from geo.stub import BlobGenerator

    from tijeras.geo import open_raster, raster_layer

    baseline = _peak_mb()
    start = time.perf_counter()
    generator = BlobGenerator()
    with open_raster(raster) as source:
        layer = raster_layer(source, generator, tile, overlap)
    layer.write(out)
    seconds = time.perf_counter() - start
    figures = {
        "objects": len(layer),
        "tiles": generator.tiles,
        "seconds": round(seconds, 2),
        "baseline_mb": round(baseline, 1),
        "peak_mb": round(_peak_mb(), 1),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(int(v) for v in sys.argv[3:5]))
