"""tijeras.geo against samgeo (segment-geospatial) on one synthetic GeoTIFF and one model.

The raster is the tests' synthetic scene (``tests/geo/large_scene.py``): ``--size`` x
``--size`` pixels, one uint8 band, 0.5 m pixels in EPSG:32631, objects (discs, rectangles,
three larger than a tile) centred on tile borders and corners, and pairs of rectangles that
share a side (neighbouring fields) across borders. Both tools get the same generator:

- ``--model stub``: the tests' exact stand-in (one mask per blob of one grey level), so every
  difference is the tool's own: seams, splits, merges, duplicates, memory, time;
- ``--model test-tiny`` (or any tijeras model name: its cached weights when ``tijeras download``
  fetched them, else random weights): tijeras' everything-mode generator on that model, plugged
  into samgeo as its ``mask_generator`` (``SamGeo`` built without downloading anything).

tijeras runs ``tijeras.geo.raster_layer`` (tiles of ``--tile`` with ``--overlap``, the seam-free
merge, one polygon per object). samgeo runs its large-raster path, ``SamGeo.generate(...,
batch=True)`` (windows of ``--tile`` pixels whose central part, ``--tile - 2 * 128``, is kept)
then ``SamGeo.tiff_to_gpkg``. Each runs in a fresh process; its peak resident memory (VmHWM)
and wall time are measured.

Scores against the truth (per object; a polygon "hits" an object when it covers 5% of it):
``exact`` objects matched by one polygon with IoU >= 0.99; ``split`` objects hit by 2+
polygons; ``merged`` polygons covering half or more of 2+ objects; ``missed`` objects hit by
none; ``seam m`` the length of polygon outline lying on the tool's own cut lines (tile or
window edges) beyond the true outlines lying there: where a mask was cut instead of continued.

    python bench/geo_bench.py --size 20000                     # stub, 1024 / 256
    python bench/geo_bench.py --size 4096 --model test-tiny --points-per-side 8
    python bench/geo_bench.py --size 2048 --model mobile-sam --points-per-side 32 \
        --thresholds model --tools tijeras       # the real architecture's time per tile

samgeo is a benchmark-only dependency: ``pip install segment-geospatial geopandas`` (or
``--no-deps`` plus geopandas, rasterio, pyproj, shapely; its import needs no model weights).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

BOUND = 128  # samgeo's default margin around each window's kept centre


def _peak_mb() -> float:
    status = Path("/proc/self/status")
    for line in status.read_text().splitlines() if status.exists() else []:
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------------------- generators


def _generator(args: argparse.Namespace, output_mode: str):
    from geo.stub import BlobGenerator

    if args.model == "stub":
        return BlobGenerator()
    import torch

    import tijeras
    from tijeras.hub.download import cached_checkpoint

    weights = cached_checkpoint(tijeras.get_spec(args.model).name)
    torch.manual_seed(0)  # random weights when none are cached: same on both sides
    net = tijeras.load_model(args.model, weights) if weights else tijeras.build_model(args.model)
    options = net.everything_defaults.replace(points_per_side=args.points_per_side)
    if args.thresholds == "zero":  # random weights score low: keep every candidate
        options = options.replace(pred_iou_thresh=0.0, stability_score_thresh=0.0)
    return net.mask_generator(options, output_mode=output_mode)


class MetaRecords:
    """The stub as samgeo expects a generator: ``generate(image)`` -> Meta's records."""

    def __init__(self, stub) -> None:
        self.stub = stub

    def generate(self, image):
        from pycocotools import mask as mask_utils

        records = self.stub.generate_records(image)
        out = []
        for i, rle in enumerate(records.rles):
            mask = mask_utils.decode(rle).astype(bool)
            x0, y0, x1, y1 = (int(v) for v in records.boxes[i])
            out.append(
                {
                    "segmentation": mask,
                    "area": int(mask.sum()),
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "predicted_iou": float(records.iou[i]),
                    "point_coords": [list(records.points[i])],
                    "stability_score": float(records.stability[i]),
                    "crop_box": [0, 0, image.shape[1], image.shape[0]],
                }
            )
        return out


# ----------------------------------------------------------------------------- workers


def run_tijeras(raster: str, out: str, args: argparse.Namespace) -> dict:
    import pyogrio  # noqa: F401  (imported before the baseline, as samgeo's are)
    import rasterio  # noqa: F401
    import shapely  # noqa: F401

    from tijeras.geo import open_raster, raster_layer

    generator = _generator(args, "coco_rle")
    baseline = _peak_mb()
    start = time.perf_counter()
    with open_raster(raster) as source:
        layer = raster_layer(source, generator, args.tile, args.overlap)
    layer.write(out)
    return {"seconds": time.perf_counter() - start, "baseline_mb": baseline}


def run_samgeo(raster: str, out: str, args: argparse.Namespace) -> dict:
    from samgeo import SamGeo

    generator = _generator(args, "binary_mask")
    if args.model == "stub":
        generator = MetaRecords(generator)
    sam = SamGeo.__new__(SamGeo)  # no weights download: the generator is given
    sam.mask_generator = generator
    baseline = _peak_mb()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        mask = str(Path(folder) / "mask.tif")
        side = args.tile - 2 * BOUND
        sam.generate(
            raster,
            output=mask,
            batch=True,
            batch_sample_size=(side, side),
            foreground=True,
            erosion_kernel=None,
            mask_multiplier=255,
        )
        sam.tiff_to_gpkg(mask, out)
    return {"seconds": time.perf_counter() - start, "baseline_mb": baseline}


def worker(tool: str, raster: str, out: str, args: argparse.Namespace) -> None:
    os.environ.setdefault("TQDM_DISABLE", "1")
    figures = (run_tijeras if tool == "tijeras" else run_samgeo)(raster, out, args)
    figures["peak_mb"] = _peak_mb()
    print(json.dumps(figures))


# ----------------------------------------------------------------------------- scoring


def cut_lines(tool: str, size: int, tile: int, overlap: int) -> list[int]:
    """Pixel coordinates (same along x and y) where a tool cuts masks."""
    if tool == "tijeras":
        from geo.large_scene import tile_edges

        return tile_edges(size, tile, overlap)
    side = tile - 2 * BOUND
    return list(range(side, size, side))


def score(out: str, shapes: list, tool: str, args: argparse.Namespace) -> dict:
    import numpy as np
    import pyogrio
    import shapely

    from tijeras.geo.vectorize import mask_geometry

    _, _, wkb, _ = pyogrio.raw.read(out)
    # back to pixel coordinates (0.5 m pixels, corner 430000, 4590000, north up)
    polygons = shapely.transform(
        shapely.from_wkb(wkb),
        lambda xy: np.stack([(xy[:, 0] - 430000) / 0.5, (4590000 - xy[:, 1]) / 0.5], 1),
    )
    seam = _seam(polygons, shapes, cut_lines(tool, args.size, args.tile, args.overlap), args)
    if args.model != "stub":  # masks of another model are not the truth's: seams only
        return {"polygons": len(polygons), "seam_m": seam * 0.5}
    tree = shapely.STRtree(polygons)
    exact = split = missed = 0
    covering: dict[int, int] = {}
    for shape in shapes:
        x0, y0, x1, y1 = shape.box
        truth = mask_geometry(shape.mask(x0, y0, x1, y1), x0, y0)
        hits = []
        for i in tree.query(truth):
            inter = polygons[i].intersection(truth).area
            if inter >= 0.05 * truth.area:
                hits.append((i, inter))
            if inter >= 0.5 * truth.area:
                covering[int(i)] = covering.get(int(i), 0) + 1
        if not hits:
            missed += 1
        elif len(hits) > 1:
            split += 1
        else:
            i, inter = hits[0]
            if inter / polygons[i].union(truth).area >= 0.99:
                exact += 1
    return {
        "polygons": len(polygons),
        "exact": exact,
        "split": split,
        "merged": sum(1 for n in covering.values() if n >= 2),
        "missed": missed,
        "seam_m": seam * 0.5,
    }


def _seam(polygons, shapes: list, lines: list[int], args: argparse.Namespace) -> float:
    """Pixels of outline lying on the cut lines, less the true outlines lying there."""
    import shapely

    from tijeras.geo.vectorize import mask_geometry

    edges = shapely.union_all(
        [shapely.LineString([(v, 0), (v, args.size)]) for v in lines]
        + [shapely.LineString([(0, v), (args.size, v)]) for v in lines]
    )
    seam = float(shapely.length(shapely.intersection(shapely.boundary(polygons), edges)).sum())
    if args.model == "stub":  # true outlines that happen to lie on a cut line are no seam
        for shape in shapes:
            x0, y0, x1, y1 = shape.box
            truth = mask_geometry(shape.mask(x0, y0, x1, y1), x0, y0)
            seam -= truth.boundary.intersection(edges).length
    return seam


# ----------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20000)
    parser.add_argument("--objects", type=int, default=700)
    parser.add_argument("--touching", type=int, default=60, help="pairs of adjacent fields")
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--overlap", type=int, default=256)
    parser.add_argument("--model", default="stub")
    parser.add_argument("--points-per-side", type=int, default=8)
    parser.add_argument(
        "--thresholds",
        choices=("zero", "model"),
        default="zero",
        help="IoU and stability thresholds of a model: 0 (every candidate) or the model's",
    )
    parser.add_argument("--tools", default="tijeras,samgeo")
    parser.add_argument("--worker", nargs=3, metavar=("TOOL", "RASTER", "OUT"))
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker, args)
        return
    from geo.large_scene import make_shapes, write_scene

    shapes = make_shapes(
        count=args.objects,
        size=args.size,
        tile=args.tile,
        overlap=args.overlap,
        touching=args.touching,
    )
    with tempfile.TemporaryDirectory() as folder:
        raster = write_scene(Path(folder) / "scene.tif", shapes, size=args.size)
        print(
            f"scene: {args.size} x {args.size} px, {len(shapes)} objects, model {args.model}, "
            f"tile {args.tile} overlap {args.overlap}; cpu {_cpu()}"
        )
        print("| tool | polygons | exact | split | merged | missed | seam m | time s | peak MB |")
        print("|---|---|---|---|---|---|---|---|---|")
        for tool in args.tools.split(","):
            out = str(Path(folder) / f"{tool}.gpkg")
            command = [sys.executable, __file__, "--worker", tool, str(raster), out, *_passed(args)]
            run = subprocess.run(command, capture_output=True, text=True, check=False)
            if run.returncode:
                print(f"| {tool} | failed: {run.stderr.strip().splitlines()[-1]} |")
                continue
            figures = json.loads(run.stdout.strip().splitlines()[-1])
            s = score(out, shapes, tool, args)
            counts = [s.get(k, "-") for k in ("exact", "split", "merged", "missed")]
            print(
                f"| {tool} | {s['polygons']} | {' | '.join(map(str, counts))} | "
                f"{s['seam_m']:.0f} | {figures['seconds']:.1f} | "
                f"{figures['peak_mb']:.0f} (imports {figures['baseline_mb']:.0f}) |"
            )


def _passed(args: argparse.Namespace) -> list[str]:
    return [
        "--size",
        str(args.size),
        "--tile",
        str(args.tile),
        "--overlap",
        str(args.overlap),
        "--model",
        args.model,
        "--points-per-side",
        str(args.points_per_side),
        "--thresholds",
        args.thresholds,
    ]


def _cpu() -> str:
    info = Path("/proc/cpuinfo")
    for line in info.read_text().splitlines() if info.exists() else []:
        if line.startswith("model name"):
            return f"{line.split(':', 1)[1].strip()} x {os.cpu_count()}"
    return "unknown"


if __name__ == "__main__":
    main()
