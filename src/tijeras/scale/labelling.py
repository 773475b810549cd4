"""Labelling one image: the function every worker builds once and calls per image.

A labeller factory takes a :class:`~tijeras.scale.job.LabelJob` and returns a function from an
H x W x 3 uint8 RGB array to a list of records (Meta's everything-mode dicts with a COCO RLE
``segmentation``). :func:`everything_labeller` is everything mode; a text-prompted labeller
(one phrase list per run, ``LabelJob.phrases``) plugs in as another factory named in
``LabelJob.labeller``. :func:`generate_records` is the step ``tijeras everything`` runs per
image too, so a run on a cluster and one on this machine give the same masks.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tijeras.errors import TijerasError

if TYPE_CHECKING:
    import numpy as np
    import torch

    from tijeras.scale.job import LabelJob

__all__ = [
    "LabelFn",
    "build_model",
    "check_job",
    "everything_labeller",
    "generate_records",
    "labeller_factory",
]

LabelFn = Callable[["np.ndarray"], list[dict[str, Any]]]


def generate_records(
    generator: Any,
    rgb: np.ndarray,
    *,
    tile: int | None,
    overlap: int,
    device: str,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Everything-mode records of one image, tile by tile when ``tile`` is set.

    Raises:
        TijerasError: the device ran out of memory (with what to change).
    """
    import torch

    try:
        if tile is not None:
            from tijeras.automatic.tiling import generate_tiled

            return generate_tiled(
                generator, rgb, tile_size=tile, overlap=overlap, progress=progress
            )
        generator.progress = progress
        try:
            return generator.generate(rgb)
        finally:
            generator.progress = None
    except torch.OutOfMemoryError as exc:
        raise TijerasError(
            f"out of memory on {device}: try --device cpu, --tile 1024 or a smaller "
            "--points-per-batch"
        ) from exc


def check_job(job: LabelJob) -> None:
    """The checks that need no model: the name is registered, the weights are there, the
    labeller can be imported. The model itself is loaded by the workers (and once before any
    work by :func:`tijeras.scale.pipeline.label_dataset`).

    Raises:
        TijerasError: naming what is wrong.
    """
    from tijeras.catalog import get_spec
    from tijeras.hub.download import cache_dir, cached_checkpoint

    spec = get_spec(job.model)
    if job.checkpoint is not None:
        if not Path(job.checkpoint).is_file():
            raise TijerasError(f"checkpoint {job.checkpoint!r}: no such file")
    elif spec.checkpoint is not None and cached_checkpoint(spec.name, job.cache) is None:
        raise TijerasError(
            f"no weights for {spec.name} in {cache_dir(job.cache)}: run "
            f"`tijeras download {spec.name}` or pass a checkpoint path"
        )
    labeller_factory(job.labeller)


def labeller_factory(reference: str) -> Callable[[LabelJob], LabelFn]:
    """The factory ``"module:function"`` names.

    Raises:
        TijerasError: it cannot be imported or is not callable.
    """
    module_name, _, attribute = reference.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise TijerasError(f"labeller {reference!r} cannot be imported: {exc}") from None
    if not callable(factory):
        raise TijerasError(f"labeller {reference!r} is not a function")
    return factory


def build_model(job: LabelJob) -> torch.nn.Module:
    """The job's model on its device; random-weight test models are seeded, so every worker
    builds the same weights (as ``tijeras everything`` does)."""
    import torch

    from tijeras import load_model
    from tijeras.catalog import get_spec

    spec = get_spec(job.model)
    if job.checkpoint is None and spec.checkpoint is None and not spec.weightless:
        torch.manual_seed(0)
    return load_model(
        spec.name, job.checkpoint, device=job.device, dtype=job.dtype, cache=job.cache
    )


def everything_labeller(job: LabelJob) -> LabelFn:
    """Everything mode with the job's options, optionally tiled."""
    if job.phrases:
        raise TijerasError("text phrases need a text-prompted labeller; everything mode takes none")
    generator = build_model(job).mask_generator(job.options, output_mode="coco_rle")

    def label(rgb: np.ndarray) -> list[dict[str, Any]]:
        return generate_records(
            generator, rgb, tile=job.tile, overlap=job.tile_overlap, device=job.device
        )

    return label
