"""What the commands share: the Typer app, option definitions, one-line errors, model loading.

Torch-free at import, so ``tijeras --help`` is fast; every command module imports this one and
:mod:`tijeras.cli.main` imports the command modules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    import numpy as np

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
    auto = "auto"  # bfloat16 image encoder where the device runs it fast (tijeras.hub.precision)


# Options shared by the commands that load a model (one definition, reused by each command).
ModelOption = Annotated[
    str, typer.Option("--model", "-m", help="Model name or alias (see `tijeras models`).")
]
CheckpointOption = Annotated[
    Path | None,
    typer.Option("--checkpoint", metavar="PATH", help="Weights file (default: the cache)."),
]
DeviceOption = Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:1, mps ...")]
DTypeOption = Annotated[
    DType,
    typer.Option(
        "--dtype",
        help="Model precision. auto: a bfloat16 image encoder where the CPU or GPU runs it fast "
        "(see `tijeras doctor`), float32 elsewhere; float32: outputs identical to Meta's.",
    ),
]
CacheOption = Annotated[
    Path | None,
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
    """One ``error:`` line for a device this machine does not have."""
    import torch

    from tijeras.errors import TijerasError
    from tijeras.hub.devices import resolve_device

    try:
        dev = resolve_device(device)
    except TijerasError as exc:
        _fail(f"--{exc}")  # "--device 'cuda': ..."
    if dev.type == "mps" and not torch.backends.mps.is_available():
        _fail(f"--device {device!r}: MPS is not available on this machine")


def _describe_mask(mask: np.ndarray) -> str:
    from tijeras.io import mask_to_box

    area = int(mask.sum())
    percent = 100.0 * area / mask.size
    box = mask_to_box(mask)
    where = "empty" if box is None else ",".join(str(v) for v in box)
    return f"area {area} px ({percent:.1f}%)  bbox {where}"


# ----------------------------------------------------------------------------- models


def model_builder(
    model_name: str,
    checkpoint: Path | None,
    device: str,
    dtype: str,
    cache: Path | None,
    *,
    offline_hint: bool = True,
) -> Callable[[], Any]:
    """Check the model name, its weights and the device now (one clear error each); return a
    function that builds the model when called (random-weight test models are seeded).
    ``offline_hint``: the missing-weights message points to ``--model classic`` (image
    commands; the classical backend cannot track a video)."""
    from tijeras.catalog import get_spec
    from tijeras.errors import TijerasError
    from tijeras.hub.download import cache_dir, cached_checkpoint

    try:
        spec = get_spec(model_name)
    except TijerasError as exc:
        _fail(str(exc))
    if checkpoint is None and spec.checkpoint is not None:
        checkpoint = cached_checkpoint(spec.name, cache)
        if checkpoint is None:
            hint = (
                "; offline, --model classic needs no weights (OpenCV GrabCut, less accurate)"
                if offline_hint
                else ""
            )
            _fail(
                f"no weights for {spec.name} in {cache_dir(cache)}: run "
                f"`tijeras download {spec.name}` or pass --checkpoint PATH{hint}"
            )
    _check_device(device)

    def build() -> Any:
        import torch

        from tijeras import load_model

        if checkpoint is None and not spec.weightless:
            torch.manual_seed(0)  # random-weight test models: same output on every run
            typer.echo(f"note: {spec.name} runs with random weights (no checkpoint)", err=True)
        return load_model(
            spec.name, None if checkpoint is None else str(checkpoint), device=device, dtype=dtype
        )

    return build
