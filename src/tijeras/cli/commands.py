"""The commands ``segment``, ``download``, ``models`` and ``doctor``."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tijeras.cli import geo as geo_cli
from tijeras.cli import text as text_cli
from tijeras.cli.allocator import ALLOCATOR_ENV, REEXEC_MARKER, jemalloc_loaded
from tijeras.cli.common import (
    _IMAGE_SUFFIXES,
    CacheOption,
    CheckpointOption,
    DeviceOption,
    DType,
    DTypeOption,
    ModelOption,
    _describe_mask,
    _fail,
    _numbered,
    _parse_numbers,
    _user_errors,
    app,
    model_builder,
)
from tijeras.defaults import DEFAULT_MODEL

if TYPE_CHECKING:
    import numpy as np

# ----------------------------------------------------------------------------- segment


@dataclass(frozen=True)
class Outputs:
    """The files ``tijeras segment`` writes, checked before any model loads."""

    mask: Path | None = None
    cutout: Path | None = None
    overlay: Path | None = None
    erase: Path | None = None
    erase_dilate: int = 8
    sticker: Path | None = None
    sticker_outline: int = 0

    def check(self) -> None:
        """One ``error:`` line for a suffix that does not fit or a folder that does not exist
        (no folder is created: a typo must not make a tree of folders)."""
        kinds = (
            ("--out", self.mask, (".png",), "a mask is written as PNG"),
            ("--cutout", self.cutout, (".png", ".webp"), "a cut-out needs transparency"),
            ("--overlay", self.overlay, _IMAGE_SUFFIXES, "an overlay is an image"),
            ("--erase", self.erase, (".jpg", ".jpeg", ".png", ".webp"), "the erased photo"),
            ("--sticker", self.sticker, (".webp", ".png"), "a sticker needs transparency"),
        )
        for flag, path, suffixes, why in kinds:
            if path is None:
                continue
            if path.suffix.lower() not in suffixes:
                _fail(
                    f"{flag} {str(path)!r}: unsupported suffix {path.suffix!r} ({why}); "
                    f"use {' or '.join(suffixes)}"
                )
            parent = path.parent
            if not parent.is_dir():
                _fail(f"{flag} {str(path)!r}: folder {str(parent)!r} does not exist; create it")
        if not 0 <= self.erase_dilate <= 500:
            _fail(f"--erase-dilate {self.erase_dilate}: use 0 to 500 pixels")
        if not 0 <= self.sticker_outline <= 16:
            _fail(f"--sticker-outline {self.sticker_outline}: use 0 to 16 pixels")

    def write(self, rgb: np.ndarray, mask: np.ndarray, label: str, index: int | None) -> None:
        """Write every requested file for one mask (``index``: numbered names, multimask)."""
        from tijeras.io.export import (
            cutout,
            erase_object,
            overlay,
            save_image,
            save_mask_png,
            sticker,
        )

        def target(path: Path) -> Path:
            return path if index is None else _numbered(path, index)

        if self.mask is not None:
            save_mask_png(mask, target(self.mask))
            typer.echo(f"wrote {target(self.mask)} (mask, {mask.shape[1]}x{mask.shape[0]})")
        objects = [
            (self.cutout, "cut-out RGBA", lambda: cutout(rgb, mask)),
            (
                self.sticker,
                "sticker RGBA",
                lambda: sticker(rgb, mask, outline=self.sticker_outline),
            ),
            (self.erase, "object erased", lambda: erase_object(rgb, mask, self.erase_dilate)),
        ]
        wanted = [(path, what, make) for path, what, make in objects if path is not None]
        if wanted and not mask.any():
            typer.echo(f"warning: {label} is empty; no cut-out, sticker or erased photo", err=True)
            wanted = []
        for path, what, make in wanted:
            pixels = make()
            save_image(pixels, target(path))
            typer.echo(f"wrote {target(path)} ({what}, {pixels.shape[1]}x{pixels.shape[0]})")
        if self.overlay is not None:
            drawn = overlay(rgb, mask)
            save_image(drawn, target(self.overlay))
            typer.echo(f"wrote {target(self.overlay)} (overlay, {drawn.shape[1]}x{drawn.shape[0]})")


@app.command()
def segment(
    ctx: typer.Context,
    image: Annotated[
        str, typer.Argument(metavar="IMAGE", help="Image file to segment.", show_default=False)
    ],
    point: Annotated[
        list[str] | None,
        typer.Option("--point", "-p", metavar="X,Y", help="Foreground click (repeatable)."),
    ] = None,
    neg_point: Annotated[
        list[str] | None,
        typer.Option("--neg-point", "-n", metavar="X,Y", help="Background click (repeatable)."),
    ] = None,
    box: Annotated[
        str | None,
        typer.Option("--box", "-b", metavar="X0,Y0,X1,Y1", help="Box around the object."),
    ] = None,
    multimask: Annotated[
        bool,
        typer.Option(
            "--multimask",
            help="Write every candidate mask (FILE_0, FILE_1, ...) instead of the best one.",
        ),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", metavar="MASK.png", help="Write the 0/255 mask PNG."),
    ] = None,
    cutout_path: Annotated[
        Path | None,
        typer.Option(
            "--cutout",
            metavar="FILE.png",
            help="Write the object as RGBA, transparent outside, cropped to it.",
        ),
    ] = None,
    overlay_path: Annotated[
        Path | None,
        typer.Option("--overlay", metavar="FILE.png", help="Write the mask drawn over the image."),
    ] = None,
    erase_path: Annotated[
        Path | None,
        typer.Option(
            "--erase",
            metavar="FILE.jpg",
            help="Write the photo with the object erased (filled from its surroundings by "
            "OpenCV's inpainting; a learned inpainter fills large areas better).",
        ),
    ] = None,
    erase_dilate: Annotated[
        int,
        typer.Option("--erase-dilate", metavar="PX", help="Grow the erased area by PX pixels."),
    ] = 8,
    sticker_path: Annotated[
        Path | None,
        typer.Option(
            "--sticker",
            metavar="FILE.webp",
            help="Write a 512x512 sticker: the object centred, transparent around it.",
        ),
    ] = None,
    sticker_outline: Annotated[
        int,
        typer.Option(
            "--sticker-outline", metavar="PX", help="White outline around the sticker (0: none)."
        ),
    ] = 0,
    model: ModelOption = DEFAULT_MODEL,
    checkpoint: CheckpointOption = None,
    device: DeviceOption = "cpu",
    dtype: DTypeOption = DType.auto,
    cache: CacheOption = None,
    text: text_cli.TextOption = None,
    exemplar: text_cli.ExemplarOption = None,
    neg_exemplar: text_cli.NegExemplarOption = None,
    text_threshold: text_cli.ThresholdOption = text_cli.DEFAULT_THRESHOLD,
    point_geo: geo_cli.PointGeoOption = None,
    neg_point_geo: geo_cli.NegPointGeoOption = None,
    box_geo: geo_cli.BoxGeoOption = None,
    crs: geo_cli.CrsOption = None,
    bands: geo_cli.BandsOption = None,
    stretch: geo_cli.StretchOption = None,
    simplify: geo_cli.SimplifyOption = None,
) -> None:
    """Segment the object at the given points and/or box and write its mask, cut-out or overlay.

    With a single click SAM's three candidates are computed and the best-scoring one is kept.
    With --text (or --exemplar) every instance of the concept is found (SAM 3) and --out is a
    folder: one PNG per instance and a COCO JSON with a category per phrase.
    """
    if text_cli.is_concept_request(text, exemplar, neg_exemplar):
        single = {"--cutout": cutout_path, "--erase": erase_path, "--sticker": sticker_path}
        text_cli.check_segment_flags((point or []) + (neg_point or []), box, multimask, single)
        request = text_cli.ConceptRequest(
            image,
            tuple(text or ()),
            tuple(exemplar or ()),
            tuple(neg_exemplar or ()),
            text_threshold,
            out,
            overlay_path,
            text_cli.concept_model(ctx, model),
            checkpoint,
            device,
            dtype.value,
            cache,
        )
        with _user_errors():
            text_cli.segment_concepts(request)
        return
    geo_flags = {
        "--point-geo": point_geo,
        "--neg-point-geo": neg_point_geo,
        "--box-geo": box_geo,
        "--crs": crs,
        "--bands": bands,
        "--stretch": stretch,
        "--simplify": simplify,
    }
    if geo_cli.wants_geo_segment(out, geo_flags):  # a raster, map prompts, a vector layer out
        images = {
            "--cutout": cutout_path,
            "--overlay": overlay_path,
            "--erase": erase_path,
            "--sticker": sticker_path,
        }
        with _user_errors():
            geo_cli.segment_geo(
                image,
                point or [],
                neg_point or [],
                box,
                point_geo or [],
                neg_point_geo or [],
                box_geo,
                crs,
                bands,
                stretch,
                simplify,
                multimask,
                out,
                images,
                (model, checkpoint, device, dtype.value, cache),
            )
        return
    with _user_errors():
        _segment(
            image,
            point or [],
            neg_point or [],
            box,
            multimask,
            Outputs(
                out,
                cutout_path,
                overlay_path,
                erase_path,
                erase_dilate,
                sticker_path,
                sticker_outline,
            ),
            model,
            checkpoint,
            device,
            dtype.value,
            cache,
        )


def _segment(
    image_path: str,
    points: Sequence[str],
    neg_points: Sequence[str],
    box_text: str | None,
    multimask: bool,
    outputs: Outputs,
    model_name: str,
    checkpoint: Path | None,
    device: str,
    dtype: str,
    cache: Path | None,
) -> None:
    # Everything cheap is checked before the model is loaded or the image encoded.
    coords = [_parse_numbers("--point", p, 2, "X,Y") for p in points]
    coords += [_parse_numbers("--neg-point", p, 2, "X,Y") for p in neg_points]
    labels = [1] * len(points) + [0] * len(neg_points)
    box = _parse_numbers("--box", box_text, 4, "X0,Y0,X1,Y1") if box_text is not None else None
    if not coords and box is None:
        _fail("no prompt given: pass --point X,Y, --neg-point X,Y or --box X0,Y0,X1,Y1")
    outputs.check()

    import numpy as np
    import torch

    from tijeras import Predictor
    from tijeras.engine.prompts import validate_prompts
    from tijeras.io import load_image

    rgb = load_image(image_path)
    point_coords = np.asarray(coords, dtype=np.float64) if coords else None
    point_labels = np.asarray(labels, dtype=np.int64) if coords else None
    box_array = np.asarray(box, dtype=np.float64) if box is not None else None
    # Prompts outside the image fail now, before the (slow) encoder runs.
    validate_prompts(point_coords, point_labels, box_array, None, rgb.shape[:2], None)

    build = model_builder(model_name, checkpoint, device, dtype, cache)
    try:
        net = build()
        predictor = Predictor(net)
        predictor.set_image(rgb)
        single_click = len(coords) == 1 and box is None
        prediction = predictor.predict(
            point_coords, point_labels, box_array, multimask_output=multimask or single_click
        )
    except torch.OutOfMemoryError:
        _fail(f"out of memory on {device}: try --device cpu or a smaller model")

    masks, scores = prediction.masks, prediction.scores
    if multimask:
        chosen = list(range(len(scores)))
    else:
        chosen = [int(np.argmax(scores))]

    for index in chosen:
        mask = masks[index]
        label = f"mask {index}" if multimask else "mask"
        typer.echo(f"{label}: score {float(scores[index]):.3f}  {_describe_mask(mask)}")
        outputs.write(rgb, mask, label, index if multimask else None)


# ----------------------------------------------------------------------------- download


@app.command()
def download(
    names: Annotated[list[str], typer.Argument(metavar="NAME...", help="Model names or aliases.")],
    cache: CacheOption = None,
    force: Annotated[bool, typer.Option("--force", help="Fetch again even if cached.")] = False,
    url: Annotated[
        str | None,
        typer.Option("--url", metavar="URL", help="Fetch from this address (one model only)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Download and verify official checkpoints into the cache; print their paths."""
    import tijeras.catalog  # noqa: F401  (fills the registry the download looks names up in)
    from tijeras.errors import TijerasError
    from tijeras.hub.download import download as fetch

    if url is not None and len(names) > 1:
        _fail("--url applies to one model; give a single NAME with it")
    failed = False
    for name in names:
        try:
            path = fetch(name, cache, progress=not quiet, force=force, url=url)
        except TijerasError as exc:
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            typer.echo(f"error: {'; '.join(lines)}", err=True)
            failed = True
            continue
        typer.echo(str(path))
    if failed:
        raise typer.Exit(2)


# ----------------------------------------------------------------------------- models


MODELS_WIDTH = 100
"""``tijeras models`` fits a terminal this wide."""
_ALIAS_ROOM = 30


def _short_aliases(aliases: Sequence[str]) -> str:
    """The shortest aliases that fit the column, and how many more there are."""
    shown: list[str] = []
    for alias in sorted(aliases, key=len):
        if len(",".join([*shown, alias])) > _ALIAS_ROOM - 5:
            break
        shown.append(alias)
    more = len(aliases) - len(shown)
    text = ",".join(shown) or "-"
    return f"{text} (+{more})" if more else text


@app.command()
def models(
    cache: CacheOption = None,
) -> None:
    """List the registered models, their checkpoints and whether they are downloaded."""
    from tijeras.catalog import get_spec
    from tijeras.hub.download import cache_dir, model_table

    with _user_errors():
        rows = model_table(cache)
        folder = cache_dir(cache)
    header = ("NAME", "ALIASES", "SIZE MB", "CHECK", "WEIGHTS")
    table = [header]
    truncated = False
    for row in rows:
        if row["filename"] is None:
            weightless = get_spec(row["name"]).weightless
            where = "none needed" if weightless else "random (tests)"
        else:
            where = "downloaded" if row["present"] else "not downloaded"
            if not row["present"] and get_spec(row["name"]).checkpoint.gated:
                where = f"gated: `tijeras download {row['name']}`"
        size = "-" if row["size"] is None else f"{row['size'] / 1e6:.1f}"
        aliases = _short_aliases(row["aliases"])
        truncated = truncated or "(+" in aliases
        table.append((row["name"], aliases, size, row["check"] or "-", where))
    widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
    for r in table:
        cells = [r[i].rjust(widths[i]) if i == 2 else r[i].ljust(widths[i]) for i in range(4)]
        typer.echo("  ".join([*cells, r[4]]).rstrip())
    if truncated:
        typer.echo("(+N): more aliases (Meta's config names, Hugging Face ids) are accepted too.")
    typer.echo(f"cache: {folder}")


# ----------------------------------------------------------------------------- doctor


@app.command(hidden=True)
def doctor(
    measure: Annotated[
        bool,
        typer.Option(
            "--measure", help="Also time a matrix product in float32 and bfloat16 (about 1 s)."
        ),
    ] = False,
) -> None:
    """Print the allocator, torch version, threads, CPU, devices and the precision auto picks."""
    import platform

    from tijeras import _runtime

    loaded = jemalloc_loaded()
    if loaded:
        allocator = f"jemalloc ({loaded})"
    elif _runtime.applied:
        allocator = "system (" + "; ".join(_runtime.applied) + ")"
    elif os.environ.get(ALLOCATOR_ENV, "").strip().lower() == "system":
        allocator = f"system (untuned: {ALLOCATOR_ENV}=system)"
    else:
        allocator = "system (untuned)"
    import torch

    from tijeras import __version__

    typer.echo(f"tijeras: {__version__}")
    typer.echo(f"python: {platform.python_version()} ({sys.executable})")
    typer.echo(f"allocator: {allocator}")
    typer.echo(f"MALLOC_CONF: {os.environ.get('MALLOC_CONF', '-')}")
    typer.echo(f"re-executed: {'yes' if os.environ.get(REEXEC_MARKER) else 'no'}")
    typer.echo(f"torch: {torch.__version__}")
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 0
    typer.echo(f"threads: {torch.get_num_threads()} (usable cpus {usable})")
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        typer.echo(f"cuda: yes ({names})")
    else:
        typer.echo("cuda: no")
    mps = getattr(torch.backends, "mps", None)
    typer.echo(f"mps: {'yes' if mps is not None and mps.is_available() else 'no'}")
    _doctor_precision(measure)


def _doctor_precision(measure: bool) -> None:
    """The CPU, what ``--dtype auto`` picks on each device and why, optionally measured."""
    import torch

    from tijeras.hub.precision import choose_precision, cpu_info, measure_rates
    from tijeras.models.blocks.linear import measure_rate

    info = cpu_info()
    typer.echo(f"cpu: {info.model}")
    typer.echo(f"cpu flags: {info.isa} (torch: {torch.backends.cpu.get_cpu_capability()})")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        chosen = choose_precision(device)
        typer.echo(f"dtype auto on {device}: {chosen.label} ({chosen.reason})")
        if measure:
            rates = measure_rates(device)
            shown = ", ".join(f"{str(d).removeprefix('torch.')} {r:.0f}" for d, r in rates.items())
            typer.echo(f"matrix product on {device} (GFLOP/s): {shown}")
            if device == "cpu":
                onednn = measure_rate()
                if onednn is not None:
                    typer.echo(
                        f"float32 product as tijeras runs it (oneDNN): {onednn:.0f} GFLOP/s "
                        "(torch.mm's float32 above is MKL's)"
                    )
