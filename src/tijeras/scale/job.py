"""What a labelling run does to each image, as one frozen record, and its options hash.

A :class:`LabelJob` travels from the driver to every worker (it pickles small) and is all a
worker needs to build its labelling function. Its :meth:`LabelJob.options_hash` names the
outputs' options: the model, its weights, precision, everything-mode options, tiling and text
phrases, but not where it runs (device, cache folder), so a run resumed on other machines
continues the same labels. Each output carries the hash, and a re-run redoes an image only
when the hash differs.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from tijeras.automatic.options import EverythingOptions

__all__ = ["EVERYTHING_LABELLER", "FORMAT_VERSION", "Cluster", "LabelJob", "checkpoint_identity"]

FORMAT_VERSION = 1
"""Version of the output layout; part of the options hash."""

EVERYTHING_LABELLER = "tijeras.scale.labelling:everything_labeller"
"""The default labeller factory: everything mode (optionally tiled)."""


@dataclass(frozen=True)
class LabelJob:
    """How every image of a run is labelled.

    Attributes:
        model: registered model name (aliases are resolved by :meth:`resolved`).
        options: the everything-mode options (already merged with the model's defaults).
        checkpoint: a weights file readable at this path on every node, or None (the cache).
        device: ``"cpu"``, ``"cuda"``...; each worker builds its model there.
        dtype: ``"float32"`` or ``"bfloat16"``.
        cache: the checkpoint cache folder on every node (None: the default).
        tile: tile side in pixels for large images, or None (the whole image at once).
        tile_overlap: overlap of neighbouring tiles in pixels (0 without tiling).
        phrases: text phrases for a text-prompted labeller (empty for everything mode).
        labeller: ``"module:function"`` of the labeller factory, a function
            ``(LabelJob) -> (H x W x 3 uint8 RGB -> list of records)`` importable on every
            node; records are Meta's everything-mode dicts with a COCO RLE ``segmentation``.
        extra: the labeller's own options as ``(name, JSON value)`` pairs (a text labeller's
            score threshold, say); part of the hash.
        checkpoint_id: what identifies the weights in the hash (see
            :func:`checkpoint_identity`); filled by :meth:`resolved`.
    """

    model: str
    options: EverythingOptions
    checkpoint: str | None = None
    device: str = "cpu"
    dtype: str = "float32"
    cache: str | None = None
    tile: int | None = None
    tile_overlap: int = 0
    phrases: tuple[str, ...] = ()
    labeller: str = EVERYTHING_LABELLER
    extra: tuple[tuple[str, Any], ...] = ()
    checkpoint_id: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.tile is not None and not 0 <= self.tile_overlap < self.tile:
            raise ValueError(f"tile_overlap {self.tile_overlap} must be in [0, tile {self.tile})")
        if ":" not in self.labeller:
            raise ValueError(f"labeller must be 'module:function', got {self.labeller!r}")
        if not isinstance(self.extra, tuple):
            object.__setattr__(self, "extra", tuple(sorted(dict(self.extra).items())))
        if not isinstance(self.phrases, tuple):
            object.__setattr__(self, "phrases", tuple(self.phrases))
        for phrase in self.phrases:
            if not isinstance(phrase, str) or not phrase.strip():
                raise ValueError(f"text phrases must be non-empty strings, got {phrase!r}")

    def resolved(self) -> LabelJob:
        """The job with the model's registered name and the weights' identity filled in."""
        from dataclasses import replace

        from tijeras.catalog import get_spec

        spec = get_spec(self.model)
        return replace(self, model=spec.name, checkpoint_id=checkpoint_identity(self.checkpoint))

    def describe(self) -> dict[str, Any]:
        """Everything the options hash covers, as plain JSON values."""
        return {
            "format": FORMAT_VERSION,
            "model": self.model,
            "weights": self.checkpoint_id,
            "dtype": self.dtype,
            "options": self.options.as_dict(),
            "tile": self.tile,
            "tile_overlap": self.tile_overlap if self.tile is not None else 0,
            "phrases": list(self.phrases),
            "labeller": self.labeller,
            "extra": dict(self.extra),
        }

    def options_hash(self) -> str:
        """16 hex digits of the SHA-256 of :meth:`describe` as canonical JSON."""
        text = json.dumps(self.describe(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def checkpoint_identity(checkpoint: str | None) -> str:
    """The weights as the hash sees them: ``"default"`` (the model's official or random
    weights), or a file's name and size (reading gigabytes to hash them would cost more than
    a run's first images; a file replaced by another of the same name and size is not seen)."""
    if checkpoint is None:
        return "default"
    try:
        size = os.path.getsize(checkpoint)
    except OSError:
        return os.path.basename(checkpoint)
    return f"{os.path.basename(checkpoint)}:{size}"


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``"name: old -> new"`` for every entry of two :meth:`LabelJob.describe` documents that
    differs (options flattened), for the message that refuses to mix them."""
    flat_old, flat_new = _flatten(old), _flatten(new)
    keys = sorted(set(flat_old) | set(flat_new))
    return [
        f"{key}: {flat_old.get(key)!r} -> {flat_new.get(key)!r}"
        for key in keys
        if flat_old.get(key) != flat_new.get(key)
    ]


def _flatten(document: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in document.items():
        if isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    return flat


@dataclass(frozen=True)
class Cluster:
    """Where a run's work happens.

    Attributes:
        address: ``"auto"`` (the running Ray cluster this machine belongs to), ``"local"`` (a
            Ray instance started on this machine for the run), a Ray address
            (``"10.0.0.5:6379"``, ``"ray://head:10001"``), or None: no Ray, this process.
        workers: model workers (Ray actors), one model each.
        gpus_per_worker: GPUs each worker holds (fractions share a GPU).
        cpus_per_worker: CPUs each worker holds (its torch threads).
        images_per_call: images a worker gets at once (and Ray Data's rows per block): 1
            balances best; more cut the per-image scheduling work of the driver and Ray, for
            models faster than about 0.1 s per image.
        shard_size: images per Ray Data execution. Ray Data keeps a few kilobytes per block in
            the driver until an execution ends, so a run is cut into executions of this many
            images (each starts its workers afresh): the driver's memory stays bounded.
    """

    address: str | None = None
    workers: int = 1
    gpus_per_worker: float = 0.0
    cpus_per_worker: int = 1
    images_per_call: int = 1
    shard_size: int = 20_000

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if self.gpus_per_worker < 0:
            raise ValueError(f"gpus_per_worker must be at least 0, got {self.gpus_per_worker}")
        if self.cpus_per_worker < 1:
            raise ValueError(f"cpus_per_worker must be at least 1, got {self.cpus_per_worker}")
        if self.images_per_call < 1:
            raise ValueError(f"images_per_call must be at least 1, got {self.images_per_call}")
        if self.shard_size < 1:
            raise ValueError(f"shard_size must be at least 1, got {self.shard_size}")
