"""A 20,000 x 20,000 GeoTIFF labelled window by window: bounded memory, one polygon per object.

The raster (400 megapixels; 1.2 GB as RGB in memory) has 700 objects centred on tile borders
and corners, three of them larger than a tile. The stand-in generator gives exact masks, so
any split, duplicated, lost or altered object is the tiling's doing. The labelling runs in a
fresh process whose peak resident memory is measured (``ru_maxrss``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("rasterio")
pytest.importorskip("shapely")
pyogrio = pytest.importorskip("pyogrio")

import shapely
from geo.large_scene import SIZE, make_shapes, write_scene

SCRIPT = Path(__file__).with_name("large_scene.py")
FULL_RGB_MB = SIZE * SIZE * 3 / 2**20


def _label(tmp_path: Path, tile: int, overlap: int) -> tuple[list, dict, Path]:
    shapes = make_shapes(tile=tile, overlap=overlap)
    raster = write_scene(tmp_path / "large.tif", shapes)
    out = tmp_path / "objects.gpkg"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, str(SCRIPT), str(raster), str(out), str(tile), str(overlap)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return shapes, json.loads(run.stdout.strip().splitlines()[-1]), out


def _check(shapes: list, figures: dict, out: Path) -> None:
    assert len(shapes) == 700
    info = pyogrio.read_info(out)
    assert info["crs"] == "EPSG:32631"
    _, _, wkb, fields = pyogrio.raw.read(out)
    polygons = shapely.from_wkb(wkb)
    area_px = fields[list(info["fields"]).index("area_px")]
    assert figures["objects"] == len(polygons) == len(shapes)  # nothing lost or duplicated
    tree = shapely.STRtree(polygons)
    for shape in shapes:
        x0, y0, x1, y1 = shape.box
        # pixel box -> map box (0.5 m pixels, north up, corner 430000, 4590000), shrunk a bit
        box = shapely.box(
            430000 + x0 * 0.5 + 0.2,
            4590000 - y1 * 0.5 + 0.2,
            430000 + x1 * 0.5 - 0.2,
            4590000 - y0 * 0.5 - 0.2,
        )
        hits = [i for i in tree.query(box) if polygons[i].intersects(box)]
        assert len(hits) == 1, f"{shape}: {len(hits)} polygons"
        assert polygons[hits[0]].geom_type == "Polygon", shape
        assert area_px[hits[0]] == shape.area(), shape
    # The RGB raster alone would take FULL_RGB_MB; the run added far less than that.
    added = figures["peak_mb"] - figures["baseline_mb"]
    assert added < 256, figures


def test_20000_px_raster_large_tiles(tmp_path: Path) -> None:
    """169 tiles of 2048 (overlap 512): the default suite's run of the whole pipeline."""
    shapes, figures, out = _label(tmp_path, 2048, 512)
    assert figures["tiles"] == 169
    _check(shapes, figures, out)


@pytest.mark.slow
def test_20000_px_raster_default_tiles(tmp_path: Path) -> None:
    """676 tiles of 1024 (overlap 256), the command line's default tiling."""
    shapes, figures, out = _label(tmp_path, 1024, 256)
    assert figures["tiles"] == 676
    _check(shapes, figures, out)
    print(f"\n20000 x 20000, 1024/256: {figures} (full RGB would be {FULL_RGB_MB:.0f} MB)")
