"""The ``tijeras`` command line: segment an image, download weights, list models.

Commands::

    tijeras segment IMAGE --point X,Y [--neg-point X,Y] [--box X0,Y0,X1,Y1] [--out mask.png]
    tijeras download NAME [NAME ...]
    tijeras models

A mistake in the input (a missing file, a bad prompt, an unknown model) is reported as one
``error: ...`` line on stderr with exit code 2, never as a traceback.

:func:`main`, the console-script entry, first re-executes the process under jemalloc when the
library is installed (see :func:`maybe_reexec_with_jemalloc`); heavy modules (torch, numpy, the
image code) are imported inside the commands so that happens as early as possible.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, Optional

import typer

from tijeras.defaults import DEFAULT_MODEL

if TYPE_CHECKING:
    import numpy as np

# ----------------------------------------------------------------------------- allocator

JEMALLOC_NAME = "libjemalloc.so.2"
JEMALLOC_DIRS = (
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/usr/local/lib",
)
JEMALLOC_CONF = "background_thread:false,dirty_decay_ms:-1,muzzy_decay_ms:-1"
"""jemalloc settings used unless the user set ``MALLOC_CONF``: keep freed pages for reuse."""
REEXEC_MARKER = "TIJERAS_REEXEC"
"""Set in the re-executed process so it never re-executes again."""
ALLOCATOR_ENV = "TIJERAS_ALLOCATOR"
"""``TIJERAS_ALLOCATOR=system`` keeps the C library's allocator (no re-exec, no tuning)."""


def find_jemalloc() -> str | None:
    """Path (or soname) of an installed ``libjemalloc.so.2``, or None."""
    for folder in JEMALLOC_DIRS:
        candidate = Path(folder) / JEMALLOC_NAME
        if candidate.is_file():
            return str(candidate)
    return ctypes.util.find_library("jemalloc")


def jemalloc_loaded() -> str | None:
    """The jemalloc library mapped into this process (from ``/proc/self/maps``), or None."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                if "jemalloc" in line:
                    parts = line.split(maxsplit=5)
                    return parts[5].strip() if len(parts) == 6 else "jemalloc"
    except OSError:
        pass
    return None


def _interpreter_flags() -> list[str]:
    """The ``-X``/``-W``/``-O`` style flags this interpreter was started with."""
    try:
        import subprocess

        return list(subprocess._args_from_interpreter_flags())  # type: ignore[attr-defined]
    except Exception:  # a private helper: fall back to no flags
        return []


def maybe_reexec_with_jemalloc() -> None:
    """Replace this process by ``python -m tijeras ARGS`` running under jemalloc, if useful.

    Nothing happens off Linux, with ``TIJERAS_ALLOCATOR=system``, in a process that was already
    re-executed (``TIJERAS_REEXEC`` set), when jemalloc is already loaded, or when
    ``libjemalloc.so.2`` is not installed. Otherwise ``LD_PRELOAD`` is prepended with the library,
    ``MALLOC_CONF`` is set (unless the user set it) and :func:`os.execve` does not return.
    """
    if not sys.platform.startswith("linux"):
        return
    if os.environ.get(ALLOCATOR_ENV, "").strip().lower() == "system":
        return
    if os.environ.get(REEXEC_MARKER):
        return
    if not sys.executable or jemalloc_loaded():
        return
    library = find_jemalloc()
    if library is None:
        return
    env = dict(os.environ)
    preload = env.get("LD_PRELOAD", "").strip()
    env["LD_PRELOAD"] = f"{library}:{preload}" if preload else library
    if not env.get("MALLOC_CONF"):
        env["MALLOC_CONF"] = JEMALLOC_CONF
    env[REEXEC_MARKER] = "1"
    # The new process must import this same tijeras, wherever it was found.
    package_root = str(Path(__file__).resolve().parents[2])
    if package_root not in {str(Path(p).resolve()) for p in sys.path if p}:
        extra = env.get("PYTHONPATH")
        env["PYTHONPATH"] = package_root + (os.pathsep + extra if extra else "")
    argv = [sys.executable, *_interpreter_flags(), "-m", "tijeras", *sys.argv[1:]]
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    try:
        os.execve(sys.executable, argv, env)
    except OSError:
        return  # could not exec: carry on with the current allocator


# ----------------------------------------------------------------------------- app

app = typer.Typer(
    name="tijeras",
    help="Fast, local Segment Anything: cut objects out of images from the command line.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class DType(str, Enum):
    float32 = "float32"
    bfloat16 = "bfloat16"


# Options shared by the commands that load a model (one definition, reused by each command).
ModelOption = Annotated[
    str, typer.Option("--model", "-m", help="Model name or alias (see `tijeras models`).")
]
CheckpointOption = Annotated[
    Optional[Path],
    typer.Option("--checkpoint", metavar="PATH", help="Weights file (default: the cache)."),
]
DeviceOption = Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:1, mps ...")]
DTypeOption = Annotated[DType, typer.Option("--dtype", help="Model precision.")]
CacheOption = Annotated[
    Optional[Path],
    typer.Option("--cache", metavar="DIR", help="Checkpoint cache (default ~/.cache/tijeras)."),
]


def _fail(message: str) -> NoReturn:
    """Print ``error: message`` as one line on stderr and exit with code 2."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    typer.echo(f"error: {'; '.join(lines) or 'unknown error'}", err=True)
    raise typer.Exit(2)


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn every :class:`~tijeras.errors.TijerasError` into one ``error:`` line, exit code 2."""
    from tijeras.errors import TijerasError

    try:
        yield
    except TijerasError as exc:
        _fail(str(exc))


def _version_callback(value: bool) -> None:
    if value:
        from tijeras import __version__

        typer.echo(f"tijeras {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version_callback,
            is_eager=True,
            help="Show the version and exit.",
        ),
    ] = False,
) -> None:
    """Fast, local Segment Anything: cut objects out of images from the command line."""


# ----------------------------------------------------------------------------- parsing


def _parse_numbers(flag: str, value: str, count: int, shape: str) -> tuple[float, ...]:
    """``"3,4"`` -> ``(3.0, 4.0)``; anything else is a one-line error naming the flag."""
    import math

    parts = [p.strip() for p in value.split(",")]
    try:
        numbers = tuple(float(p) for p in parts)
    except ValueError:
        numbers = ()
    if len(numbers) != count or not all(math.isfinite(n) for n in numbers):
        kind = "two" if count == 2 else "four"
        _fail(f"{flag} expects {shape} ({kind} numbers separated by commas), got {value!r}")
    return numbers


def _numbered(path: Path, index: int) -> Path:
    """``mask.png`` -> ``mask_0.png``."""
    return path.with_name(f"{path.stem}_{index}{path.suffix}")


_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")  # what tijeras.io.save_image writes


def _check_image_suffix(flag: str, path: Path) -> None:
    if path.suffix.lower() not in _IMAGE_SUFFIXES:
        _fail(
            f"{flag} {str(path)!r}: unsupported image suffix {path.suffix!r}; "
            f"use one of {', '.join(_IMAGE_SUFFIXES)}"
        )


def _check_device(device: str) -> None:
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        _fail(f"--device {device!r} is not a device name (try cpu, cuda, cuda:1 or mps)")
    if dev.type == "cuda" and not torch.cuda.is_available():
        _fail(f"--device {device!r}: CUDA is not available on this machine")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        _fail(f"--device {device!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        _fail(f"--device {device!r}: MPS is not available on this machine")


def _describe_mask(mask: np.ndarray) -> str:
    from tijeras.io import mask_to_box

    area = int(mask.sum())
    percent = 100.0 * area / mask.size
    box = mask_to_box(mask)
    where = "empty" if box is None else ",".join(str(v) for v in box)
    return f"area {area} px ({percent:.1f}%)  bbox {where}"


# ----------------------------------------------------------------------------- segment


def model_builder(
    model_name: str, checkpoint: Path | None, device: str, dtype: str, cache: Path | None
) -> Callable[[], Any]:
    """Check the model name, its weights and the device now (one clear error each); return a
    function that builds the model when called (random-weight test models are seeded)."""
    from tijeras.model.download import cache_dir, cached_checkpoint
    from tijeras.model.registry import get_spec

    spec = get_spec(model_name)
    if checkpoint is None and spec.checkpoint is not None:
        checkpoint = cached_checkpoint(spec.name, cache)
        if checkpoint is None:
            _fail(
                f"no weights for {spec.name} in {cache_dir(cache)}: run "
                f"`tijeras download {spec.name}` or pass --checkpoint PATH"
            )
    _check_device(device)

    def build() -> Any:
        import torch

        from tijeras import load_model

        if checkpoint is None and not spec.extra.get("weightless"):
            torch.manual_seed(0)  # random-weight test models: same output on every run
            typer.echo(f"note: {spec.name} runs with random weights (no checkpoint)", err=True)
        return load_model(
            spec.name, None if checkpoint is None else str(checkpoint), device=device, dtype=dtype
        )

    return build


@app.command()
def segment(
    image: Annotated[
        str, typer.Argument(metavar="IMAGE", help="Image file to segment.", show_default=False)
    ],
    point: Annotated[
        Optional[list[str]],
        typer.Option("--point", "-p", metavar="X,Y", help="Foreground click (repeatable)."),
    ] = None,
    neg_point: Annotated[
        Optional[list[str]],
        typer.Option("--neg-point", "-n", metavar="X,Y", help="Background click (repeatable)."),
    ] = None,
    box: Annotated[
        Optional[str],
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
        Optional[Path],
        typer.Option("--out", "-o", metavar="MASK.png", help="Write the 0/255 mask PNG."),
    ] = None,
    cutout_path: Annotated[
        Optional[Path],
        typer.Option(
            "--cutout",
            metavar="FILE.png",
            help="Write the object as RGBA, transparent outside, cropped to it.",
        ),
    ] = None,
    overlay_path: Annotated[
        Optional[Path],
        typer.Option("--overlay", metavar="FILE.png", help="Write the mask drawn over the image."),
    ] = None,
    model: ModelOption = DEFAULT_MODEL,
    checkpoint: CheckpointOption = None,
    device: DeviceOption = "cpu",
    dtype: DTypeOption = DType.float32,
    cache: CacheOption = None,
) -> None:
    """Segment the object at the given points and/or box and write its mask, cut-out or overlay.

    With a single click SAM's three candidates are computed and the best-scoring one is kept.
    """
    with _user_errors():
        _segment(
            image,
            point or [],
            neg_point or [],
            box,
            multimask,
            out,
            cutout_path,
            overlay_path,
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
    out: Path | None,
    cutout_path: Path | None,
    overlay_path: Path | None,
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
    if cutout_path is not None:
        _check_image_suffix("--cutout", cutout_path)
    if overlay_path is not None:
        _check_image_suffix("--overlay", overlay_path)

    import numpy as np
    import torch

    from tijeras import Predictor
    from tijeras.engine.prompts import validate_prompts
    from tijeras.io import cutout, load_image, overlay, save_image, save_mask_png

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

        def target(path: Path) -> Path:
            return _numbered(path, index) if multimask else path

        if out is not None:
            save_mask_png(mask, target(out))
            typer.echo(f"wrote {target(out)} (mask, {mask.shape[1]}x{mask.shape[0]})")
        if cutout_path is not None:
            if not mask.any():
                typer.echo(f"warning: {label} is empty; no cut-out written", err=True)
            else:
                sticker = cutout(rgb, mask)
                save_image(sticker, target(cutout_path))
                typer.echo(
                    f"wrote {target(cutout_path)} "
                    f"(cut-out RGBA, {sticker.shape[1]}x{sticker.shape[0]})"
                )
        if overlay_path is not None:
            drawn = overlay(rgb, mask)
            save_image(drawn, target(overlay_path))
            typer.echo(f"wrote {target(overlay_path)} (overlay, {drawn.shape[1]}x{drawn.shape[0]})")


# ----------------------------------------------------------------------------- download


@app.command()
def download(
    names: Annotated[list[str], typer.Argument(metavar="NAME...", help="Model names or aliases.")],
    cache: CacheOption = None,
    force: Annotated[bool, typer.Option("--force", help="Fetch again even if cached.")] = False,
    url: Annotated[
        Optional[str],
        typer.Option("--url", metavar="URL", help="Fetch from this address (one model only)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Download and verify official checkpoints into the cache; print their paths."""
    from tijeras.errors import TijerasError
    from tijeras.model.download import download as fetch

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


@app.command()
def models(
    cache: CacheOption = None,
) -> None:
    """List the registered models, their checkpoints and whether they are downloaded."""
    from tijeras.model.download import cache_dir, model_table
    from tijeras.model.registry import get_spec

    with _user_errors():
        rows = model_table(cache)
        folder = cache_dir(cache)
    header = ("NAME", "ALIASES", "SIZE MB", "CHECK", "CACHED")
    table = [header]
    for row in rows:
        if row["filename"] is None:
            weightless = get_spec(row["name"]).extra.get("weightless")
            where = "no weights needed" if weightless else "no weights (random init)"
        elif row["present"]:
            where = row["path"]
        else:
            where = "not downloaded"
        size = "-" if row["size"] is None else f"{row['size'] / 1e6:.1f}"
        aliases = ",".join(row["aliases"]) or "-"
        table.append((row["name"], aliases, size, row["check"] or "-", where))
    widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
    for r in table:
        cells = [r[i].rjust(widths[i]) if i == 2 else r[i].ljust(widths[i]) for i in range(4)]
        typer.echo("  ".join([*cells, r[4]]))
    typer.echo(f"cache: {folder}")


# ----------------------------------------------------------------------------- doctor


@app.command(hidden=True)
def doctor() -> None:
    """Print the allocator, torch version, threads and devices in use."""
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


# ----------------------------------------------------------------------------- entry


def main() -> None:
    """Console-script entry: move under jemalloc when possible, then run the app."""
    maybe_reexec_with_jemalloc()
    app(prog_name="tijeras")


if __name__ == "__main__":
    main()
from tijeras.cli import evaltrain as _evaltrain  # noqa: F401,E402  (registers eval and train)
from tijeras.cli import everything as _everything  # noqa: F401  (registers the command)
from tijeras.cli import serve as _serve  # noqa: F401,E402  (registers the command)
