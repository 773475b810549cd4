"""``tijeras everything IMAGE|FOLDER --out DIR``: every object of an image, as files.

Runs :class:`~tijeras.automatic.generator.SamAutomaticMaskGenerator` (optionally tile by tile
with :func:`~tijeras.automatic.tiling.generate_tiled`) and writes, per image ``NAME``::

    DIR/NAME.json           coco      COCO dataset (compressed RLE masks), loads with pycocotools
    DIR/NAME_overlay.png    overlay   all masks drawn over the image
    DIR/NAME_masks/000.png  png       one 0/255 PNG per mask
    DIR/NAME.txt            yolo      YOLO segmentation labels (class 0)
    DIR/NAME_polygons.json  polygons  the masks as polygons with holes (pixel-corner xy)

plus ``DIR/coco_all.json`` (all images of a folder in one COCO dataset). Every file (and the
masks folder) is written under a temporary name and renamed when complete, so an image
counts as done exactly when all its outputs exist; a folder run skips done images (unless
``--force``), reports unreadable ones as ``skipped NAME: reason`` and carries on.

The generator options default to the model family's own (SAM's or SAM 2's), from the torch-free
options record :class:`~tijeras.automatic.options.EverythingOptions`.
"""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tijeras.automatic.options import FIELDS, SAM2_EVERYTHING, SAM_EVERYTHING
from tijeras.cli import geo as geo_cli
from tijeras.cli import scale as scale_cli
from tijeras.cli import text as text_cli
from tijeras.cli.common import (
    CacheOption,
    CheckpointOption,
    DeviceOption,
    DType,
    DTypeOption,
    ModelOption,
    _fail,
    _user_errors,
    app,
)
from tijeras.defaults import DEFAULT_MODEL
from tijeras.scale.files import atomic_dir as _atomic_dir
from tijeras.scale.files import atomic_file as _atomic
from tijeras.scale.sources import IMAGE_SUFFIXES, output_stems

if TYPE_CHECKING:
    import numpy as np

    from tijeras.automatic.options import EverythingOptions

FORMATS = ("coco", "png", "overlay", "yolo", "polygons")
LARGE_SIDE = 4096
"""Long side in pixels above which a note suggests ``--tile``."""
DEFAULT_TILE_OVERLAP = 256
OVERLAY_BUDGET = 256 * 2**20
"""Bytes of decoded masks drawn at once by the overlay (more masks are drawn in chunks)."""


# ----------------------------------------------------------------------------- options


def _option(name: str) -> Any:
    """The flag of one everything-mode option, from the options record: its help and the
    defaults of the SAM and SAM 2 families (None on the command line: the model's). Its bounds
    are checked by the record, so a bad value is one ``error:`` line naming the flag."""
    spec = FIELDS[name]
    sam, sam2 = getattr(SAM_EVERYTHING, name), getattr(SAM2_EVERYTHING, name)
    default = f"{sam:g}" if sam == sam2 else f"SAM {sam:g}, SAM 2 {sam2:g}"
    return typer.Option(
        help=f"{spec.metadata['help']} (default: the model's: {default})", show_default=False
    )


def _flag(message: str) -> str:
    """An options error with field names written as the flags that set them."""
    for name in FIELDS:
        message = message.replace(name, "--" + name.replace("_", "-"))
    return message


# ----------------------------------------------------------------------------- command


@app.command()
def everything(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            metavar="IMAGE|FOLDER",
            help="An image, or a folder whose images (jpg, png, webp, bmp, tif) are all segmented.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", metavar="DIR", help="Output folder.", show_default=False)
    ],
    formats: Annotated[
        str,
        typer.Option(
            "--formats",
            "-f",
            metavar="LIST",
            help=f"Comma-separated outputs among {', '.join(FORMATS)}.",
        ),
    ] = "coco,overlay",
    points_per_side: Annotated[int | None, _option("points_per_side")] = None,
    points_per_batch: Annotated[int | None, _option("points_per_batch")] = None,
    pred_iou_thresh: Annotated[float | None, _option("pred_iou_thresh")] = None,
    stability_score_thresh: Annotated[float | None, _option("stability_score_thresh")] = None,
    stability_score_offset: Annotated[float | None, _option("stability_score_offset")] = None,
    box_nms_thresh: Annotated[float | None, _option("box_nms_thresh")] = None,
    crop_n_layers: Annotated[int | None, _option("crop_n_layers")] = None,
    crop_nms_thresh: Annotated[float | None, _option("crop_nms_thresh")] = None,
    crop_overlap_ratio: Annotated[float | None, _option("crop_overlap_ratio")] = None,
    crop_n_points_downscale_factor: Annotated[
        int | None, _option("crop_n_points_downscale_factor")
    ] = None,
    min_mask_region_area: Annotated[int | None, _option("min_mask_region_area")] = None,
    tile: Annotated[
        int | None,
        typer.Option(
            "--tile",
            metavar="SIZE",
            min=64,
            help="Segment in overlapping SIZE x SIZE tiles at full resolution (large images).",
        ),
    ] = None,
    tile_overlap: Annotated[
        int | None,
        typer.Option(
            "--tile-overlap",
            metavar="N",
            min=0,
            help=f"Tile overlap in pixels (default: min({DEFAULT_TILE_OVERLAP}, SIZE/4)).",
            show_default=False,
        ),
    ] = None,
    polygon_tolerance: Annotated[
        float,
        typer.Option(min=0.0, help="Polygon simplification in pixels (yolo, polygons)."),
    ] = 1.0,
    force: Annotated[bool, typer.Option("--force", help="Redo images already done.")] = False,
    model: ModelOption = DEFAULT_MODEL,
    checkpoint: CheckpointOption = None,
    device: DeviceOption = "cpu",
    dtype: DTypeOption = DType.float32,
    cache: CacheOption = None,
    text: text_cli.TextOption = None,
    text_threshold: text_cli.ThresholdOption = text_cli.DEFAULT_THRESHOLD,
    bands: geo_cli.BandsOption = None,
    stretch: geo_cli.StretchOption = None,
    simplify: geo_cli.SimplifyOption = None,
    coverage: geo_cli.CoverageOption = False,
    coverage_gap: geo_cli.CoverageGapOption = None,
    ray: scale_cli.RayOption = None,
    workers: scale_cli.WorkersOption = 1,
    gpus_per_worker: scale_cli.GpusPerWorkerOption = 0.0,
    cpus_per_worker: scale_cli.CpusPerWorkerOption = 1,
) -> None:
    """Find every object in an image (or every image of a folder) and write the masks.

    Resumable over a folder: done images are skipped, unreadable ones reported and skipped.
    With --text (repeatable) every instance of each phrase is labelled instead (SAM 3), one
    category per phrase.

    Exit code 0 when any image succeeded, 1 when every image failed, 2 on a usage error.
    """
    options = {
        "points_per_side": points_per_side,
        "points_per_batch": points_per_batch,
        "pred_iou_thresh": pred_iou_thresh,
        "stability_score_thresh": stability_score_thresh,
        "stability_score_offset": stability_score_offset,
        "box_nms_thresh": box_nms_thresh,
        "crop_n_layers": crop_n_layers,
        "crop_nms_thresh": crop_nms_thresh,
        "crop_overlap_ratio": crop_overlap_ratio,
        "crop_n_points_downscale_factor": crop_n_points_downscale_factor,
        "min_mask_region_area": min_mask_region_area,
    }
    geo_flags = {
        "--bands": bands,
        "--stretch": stretch,
        "--simplify": simplify,
        "--coverage": coverage,
        "--coverage-gap": coverage_gap,
    }
    if geo_cli.wants_geo_everything(out, geo_flags):  # a raster in, a vector layer out
        with _user_errors():
            geo_cli.everything_geo(
                source,
                out,
                options,
                tile,
                tile_overlap,
                bands,
                stretch,
                simplify,
                coverage,
                coverage_gap,
                (model, checkpoint, device, dtype.value, cache),
            )
        return
    concept = None
    if text:
        text_cli.check_everything_flags(options, tile)
        model, concept = text_cli.concept_model(ctx, model), (tuple(text), text_threshold)
    with _user_errors():
        code = _everything(
            source,
            out,
            formats,
            options,
            tile,
            tile_overlap,
            polygon_tolerance,
            force,
            model,
            checkpoint,
            device,
            dtype.value,
            cache,
            concept=concept,
            scale=scale_cli.ray_request(ray, workers, gpus_per_worker, cpus_per_worker),
        )
    if code:
        raise typer.Exit(code)


def _everything(
    source: str,
    out: Path,
    formats_text: str,
    options: dict[str, Any],
    tile: int | None,
    tile_overlap: int | None,
    tolerance: float,
    force: bool,
    model_name: str,
    checkpoint: Path | None,
    device: str,
    dtype: str,
    cache: Path | None,
    concept: tuple[tuple[str, ...], float] | None = None,
    scale: scale_cli.RayRequest | None = None,
) -> int:
    # Everything cheap is checked before the model is loaded.
    from tijeras.catalog import get_spec

    formats = _parse_formats(formats_text)
    spec = get_spec(model_name)
    try:
        chosen = spec.everything.replace(**options)
    except ValueError as exc:
        _fail(_flag(str(exc)))
    overlap = _tile_overlap(tile, tile_overlap)
    if scale is not None:  # --ray: a Ray cluster labels the source (tijeras.cli.scale)
        return scale.run(
            source,
            out,
            formats_text,
            model_name,
            chosen,
            tile,
            overlap,
            force,
            checkpoint,
            device,
            dtype,
            cache,
            concept,
        )
    root = Path(source)
    if not root.exists():
        _fail(f"input not found: {source}")
    folder = root.is_dir()
    images = _list_images(root) if folder else [root]
    if folder and not images:
        _fail(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {source}")
    if out.exists() and not out.is_dir():
        _fail(f"--out {str(out)!r} exists and is not a folder")
    if folder and out.resolve() == root.resolve():
        _fail("--out must not be the input folder (its outputs would be read as inputs)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _fail(f"cannot create --out folder {str(out)!r}: {exc.strerror or exc}")
    if concept is not None:  # --text: phrases, threshold
        load = text_cli.concept_loader(*concept, model_name, checkpoint, device, dtype, cache)
    else:
        load = _model_loader(model_name, checkpoint, device, dtype, cache, chosen)

    from tqdm import tqdm

    names = _output_names(images)
    done = skipped = failed = 0
    datasets: list[dict[str, Any]] = []
    bar = tqdm(
        images,
        desc="images",
        unit="image",
        disable=None if folder else True,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    with bar:
        for image_id, path in enumerate(bar, start=1):
            outcome = _one_image(
                path,
                names[path],
                image_id,
                out,
                formats,
                force,
                folder,
                tile,
                overlap,
                tolerance,
                device,
                load,
                bar,
            )
            if outcome == "skipped":
                skipped += 1
            elif outcome == "failed":
                failed += 1
            else:
                done += 1
            if folder and outcome != "failed" and "coco" in formats:
                datasets.extend(_read_dataset(out / f"{names[path]}.json", bar))

    if folder and "coco" in formats and datasets:
        from tijeras.io import merge_coco

        _write_json(merge_coco(datasets), out / "coco_all.json")
        typer.echo(f"wrote {out / 'coco_all.json'} ({len(datasets)} images)")
    if folder:
        typer.echo(f"summary: {done} done, {skipped} skipped (already done), {failed} failed")
        if failed == len(images):
            return 1
    return 0


def _one_image(
    path: Path,
    name: str,
    image_id: int,
    out: Path,
    formats: Sequence[str],
    force: bool,
    folder: bool,
    tile: int | None,
    overlap: int,
    tolerance: float,
    device: str,
    load: Callable[[], Any],
    bar: Any,
) -> str:
    """Do one image unless it is done: ``"done"``, ``"skipped"`` (already done) or
    ``"failed"`` (reported). In a folder run a broken image fails alone; otherwise, and when
    the model cannot be loaded, the TijerasError propagates (``error:`` line, exit 2)."""
    from tijeras.errors import TijerasError

    if not force and all(target.exists() for _, target in _targets(out, name, formats)):
        _echo(bar, f"{name}: already done, skipped (use --force to redo)")
        return "skipped"
    stage = "image"
    try:
        rgb = _read_image(path, name, tile, bar)
        stage = "model"  # loaded on the first image that needs it
        generator = load()
        stage = "image"
        _process(
            rgb,
            path,
            name,
            image_id,
            out,
            formats,
            tile,
            overlap,
            tolerance,
            device,
            generator,
            bar,
        )
    except TijerasError as exc:
        if not folder or stage == "model":
            raise
        reason = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        _echo(bar, f"skipped {name}: {reason}", err=True)
        return "failed"
    return "done"


# ----------------------------------------------------------------------------- checks


def _parse_formats(text: str) -> list[str]:
    chosen: list[str] = []
    for item in text.split(","):
        word = item.strip().lower()
        if not word:
            continue
        if word not in FORMATS:
            _fail(f"--formats: unknown format {word!r}; choose from {', '.join(FORMATS)}")
        if word not in chosen:
            chosen.append(word)
    if not chosen:
        _fail(f"--formats is empty; choose from {', '.join(FORMATS)}")
    return chosen


def _tile_overlap(tile: int | None, overlap: int | None) -> int:
    if tile is None:
        if overlap is not None:
            _fail("--tile-overlap needs --tile SIZE")
        return 0
    if overlap is None:
        return min(DEFAULT_TILE_OVERLAP, tile // 4)
    if overlap >= tile:
        _fail(f"--tile-overlap {overlap} must be smaller than --tile {tile}")
    return overlap


def _list_images(folder: Path) -> list[Path]:
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        _fail(f"cannot list folder {str(folder)!r}: {exc.strerror or exc}")
    return [
        path
        for path in entries
        if path.suffix.lower() in IMAGE_SUFFIXES
        and not path.name.startswith(".")
        and path.is_file()
    ]


def _output_names(images: Sequence[Path]) -> dict[Path, str]:
    """``NAME`` of every image: its stem, or ``stem_ext`` when two images share a stem."""
    return dict(zip(images, output_stems([path.name for path in images])))


def _targets(out: Path, name: str, formats: Sequence[str]) -> list[tuple[str, Path]]:
    """``(format, path)`` of the outputs of one image, coco first, then as in ``formats``."""
    paths = {
        "coco": out / f"{name}.json",
        "overlay": out / f"{name}_overlay.png",
        "png": out / f"{name}_masks",
        "yolo": out / f"{name}.txt",
        "polygons": out / f"{name}_polygons.json",
    }
    ordered = sorted(formats, key=lambda f: f != "coco")
    return [(f, paths[f]) for f in ordered]


# ----------------------------------------------------------------------------- model


def _model_loader(
    model_name: str,
    checkpoint: Path | None,
    device: str,
    dtype: str,
    cache: Path | None,
    options: EverythingOptions,
) -> Callable[[], Any]:
    """Check the model, weights and device now; return a function building the generator
    (once, on first use: a run where every image is already done loads nothing)."""
    from tijeras.cli.common import model_builder

    if checkpoint is not None and not checkpoint.is_file():
        _fail(f"--checkpoint {str(checkpoint)!r}: no such file")
    build = model_builder(model_name, checkpoint, device, dtype, cache)
    built: list[Any] = []

    def load() -> Any:
        if not built:
            built.append(build().mask_generator(options, output_mode="coco_rle"))
        return built[0]

    return load


# ----------------------------------------------------------------------------- one image


def _read_image(path: Path, name: str, tile: int | None, bar: Any) -> np.ndarray:
    """Load one image as RGB; note when it is large enough to deserve ``--tile``."""
    from tijeras.io import load_image

    rgb = load_image(path)
    height, width = rgb.shape[:2]
    if tile is None and max(height, width) > LARGE_SIDE:
        _echo(
            bar,
            f"note: {name} is {width}x{height}; it is shrunk to the model's input "
            f"size as a whole: pass --tile 1024 to segment it at full resolution",
            err=True,
        )
    return rgb


def _process(
    rgb: np.ndarray,
    path: Path,
    name: str,
    image_id: int,
    out: Path,
    formats: Sequence[str],
    tile: int | None,
    overlap: int,
    tolerance: float,
    device: str,
    generator: Any,
    bar: Any,
) -> dict[str, Any] | None:
    """Segment one image and write its outputs; returns its COCO dataset when written."""
    from tqdm import tqdm

    from tijeras.scale.labelling import generate_records

    batches = tqdm(
        desc=name, unit="batch", leave=False, disable=None, file=sys.stderr, dynamic_ncols=True
    )

    def progress(done: int, total: int) -> None:
        batches.total = total
        batches.n = done
        batches.refresh()

    try:  # the step a --ray run takes per image too (tijeras.scale.labelling)
        records = generate_records(
            generator, rgb, tile=tile, overlap=overlap, device=device, progress=progress
        )
    finally:
        batches.close()
    categories = getattr(generator, "categories", None)  # --text: the phrases
    return _write_outputs(
        rgb, records, path, name, image_id, out, formats, tolerance, bar, categories
    )


def _write_outputs(
    rgb: np.ndarray,
    records: list[dict[str, Any]],
    path: Path,
    name: str,
    image_id: int,
    out: Path,
    formats: Sequence[str],
    tolerance: float,
    bar: Any,
    categories: Sequence[str] | None = None,
) -> dict[str, Any] | None:
    from tijeras.io import coco_dataset, save_image, save_mask_png, write_yolo
    from tijeras.io.rle import decode_coco_rle
    from tijeras.io.yolo import yolo_segmentation_lines

    height, width = rgb.shape[:2]
    dataset = None
    written = []
    for kind, target in _targets(out, name, formats):
        if kind == "coco":
            if categories is None:
                dataset = coco_dataset(records, image_id, path.name, height, width)
            else:
                dataset = text_cli.coco_document(
                    records, image_id, path.name, height, width, categories
                )
            _write_json(dataset, target)
        elif kind == "overlay":
            with _atomic(target) as temp:
                save_image(_overlay(rgb, records), temp)
        elif kind == "png":
            digits = max(3, len(str(len(records) - 1)))
            with _atomic_dir(target) as temp:
                for index, record in enumerate(records):
                    mask = decode_coco_rle(record["segmentation"])
                    save_mask_png(mask, temp / f"{index:0{digits}d}.png")
        elif kind == "yolo":
            if categories is None:
                lines = yolo_segmentation_lines(records, height, width, tolerance=tolerance)
            else:
                lines = text_cli.yolo_lines(records, height, width, tolerance, categories)
            with _atomic(target) as temp:
                write_yolo(lines, temp)
        elif kind == "polygons":
            _write_json(_polygons(records, path.name, height, width, tolerance), target)
        written.append(target.name)
    _echo(bar, f"{name}: {len(records)} masks ({width}x{height}) -> {', '.join(written)}")
    return dataset


def _overlay(rgb: np.ndarray, records: Sequence[dict[str, Any]]) -> np.ndarray:
    """``tijeras.io.overlay`` of all masks, decoding at most OVERLAY_BUDGET bytes at a time.

    Past the budget the fills are drawn chunk by chunk, then the outlines (fills at alpha 0
    leave the pixels unchanged), which gives the same picture as one call.
    """
    from tijeras.io import PALETTE, overlay
    from tijeras.io.rle import decode_coco_rle

    if not records:
        return rgb.copy()
    colours = [PALETTE[i % len(PALETTE)] for i in range(len(records))]
    chunk = max(1, OVERLAY_BUDGET // (rgb.shape[0] * rgb.shape[1]))
    if len(records) <= chunk:
        return overlay(rgb, [decode_coco_rle(r["segmentation"]) for r in records], colors=colours)
    alpha = inspect.signature(overlay).parameters["alpha"].default
    canvas = rgb
    for fill, outline in ((alpha, False), (0.0, True)):
        for start in range(0, len(records), chunk):
            masks = [decode_coco_rle(r["segmentation"]) for r in records[start : start + chunk]]
            canvas = overlay(
                canvas, masks, alpha=fill, colors=colours[start : start + chunk], outline=outline
            )
    return canvas


def _polygons(
    records: Sequence[dict[str, Any]], file_name: str, height: int, width: int, tolerance: float
) -> dict[str, Any]:
    """The ``NAME_polygons.json`` document: per object its polygons (exterior and holes)."""
    from tijeras.io import mask_to_polygons
    from tijeras.io.rle import decode_coco_rle

    objects = []
    for index, record in enumerate(records):
        polygons = mask_to_polygons(decode_coco_rle(record["segmentation"]), tolerance)
        objects.append(
            {
                "id": index + 1,
                "score": record["predicted_iou"],
                "stability_score": record["stability_score"],
                "area": record["area"],
                "bbox": record["bbox"],
                **({"category": record["category"]} if "category" in record else {}),
                "polygons": [
                    {
                        "exterior": polygon.exterior.tolist(),
                        "holes": [hole.tolist() for hole in polygon.holes],
                    }
                    for polygon in polygons
                ],
            }
        )
    return {
        "image": file_name,
        "height": height,
        "width": width,
        "coordinates": "pixel corners: pixel (row, col) covers [col, col+1) x [row, row+1)",
        "tolerance": tolerance,
        "objects": objects,
    }


# ----------------------------------------------------------------------------- files


def _write_json(document: Any, path: Path) -> None:
    from tijeras.io import write_coco

    with _atomic(path) as temp:
        write_coco(document, temp)  # JSON with numpy/torch values converted


def _read_dataset(path: Path, bar: Any) -> list[dict[str, Any]]:
    """The COCO dataset of an image done earlier, for coco_all.json ([] if unreadable)."""
    try:
        with path.open(encoding="utf-8") as stream:
            return [json.load(stream)]
    except (OSError, ValueError) as exc:
        _echo(bar, f"warning: {path.name} left out of coco_all.json: {exc}", err=True)
        return []


def _echo(bar: Any, message: str, err: bool = False) -> None:
    """Print a line without breaking the progress bar."""
    if getattr(bar, "disable", True):
        typer.echo(message, err=err)
    else:
        bar.write(message, file=sys.stderr if err else sys.stdout)
