"""The model registry: one ``ModelSpec`` per variant, grouped in ``Family`` records.

This module knows no family. :mod:`tijeras.catalog` adds each family's record (one list, in one
place), and the public ``build_model`` / ``get_spec`` / ``list_models`` of :mod:`tijeras` are
the catalog's, so they always see every family.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UnknownModelError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ..automatic.options import EverythingOptions


@dataclass(frozen=True)
class CheckpointFile:
    """Where a model's official weights live and how a downloaded copy is verified.

    ``sha256`` is set only where a digest is published by a trustworthy public source; without it
    a download is accepted on its exact ``size`` plus a strict load as the expected model.
    ``gated`` files cannot be fetched without the user's own access (``url`` is the page that
    grants it); ``tijeras download`` then says how to place the file in the cache.
    """

    filename: str
    url: str
    size: int | None = None
    sha256: str | None = None
    gated: bool = False

    @property
    def check(self) -> str:
        """The integrity check a download of this file gets: ``"sha256"`` or ``"size+load"``."""
        return "sha256" if self.sha256 else "size+load"


StateDict = dict[str, "torch.Tensor"]


@dataclass(frozen=True)
class ModelSpec:
    """A registered model variant.

    Attributes:
        name: the registered name (``"sam-vit-b"``).
        family: the family that builds it (``"sam"``).
        config: the family's frozen config of this variant.
        description: one line for ``tijeras models``.
        aliases: other names it answers to (Meta's registry keys and config names).
        checkpoint: the official weights, or None (random weights, or none needed).
        everything: the variant's everything-mode defaults.
        remap: turns a checkpoint's state_dict into this model's keys (and checks it).
        weightless: the model needs no weights at all (the classical backend).
    """

    name: str
    family: str
    config: Any
    description: str = ""
    aliases: tuple[str, ...] = ()
    checkpoint: CheckpointFile | None = None
    everything: EverythingOptions | None = None
    remap: Callable[[StateDict], StateDict] | None = None
    weightless: bool = False


@dataclass(frozen=True)
class Family:
    """A model family: how to build a module from a config, and its registered variants.

    Attributes:
        name: the family name the specs refer to.
        build: ``build(config) -> nn.Module`` (imports the family's torch modules lazily).
        specs: the variants.
        describe_checkpoint: names the variant a state_dict looks like, or None if it is not
            of this family (for errors about a wrong file).
    """

    name: str
    build: Callable[[Any], nn.Module]
    specs: tuple[ModelSpec, ...]
    describe_checkpoint: Callable[[Mapping[str, Any]], str | None] | None = None


@dataclass
class Registry:
    """Families and their variants, looked up by name or alias."""

    families: dict[str, Family] = field(default_factory=dict)
    specs: dict[str, ModelSpec] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)

    def add_family(self, family: Family) -> None:
        """Add a family and its variants; a taken family, name or alias raises ``ValueError``."""
        if family.name in self.families:
            raise ValueError(f"model family {family.name!r} is already registered")
        for spec in family.specs:
            if spec.family != family.name:
                raise ValueError(f"{spec.name} is of family {spec.family!r}, not {family.name!r}")
        self.families[family.name] = family
        for spec in family.specs:
            self.add(spec)

    def add(self, spec: ModelSpec) -> ModelSpec:
        """Add one variant of a registered family; a taken name or alias raises ``ValueError``."""
        if spec.family not in self.families:
            raise ValueError(f"{spec.name}: unknown model family {spec.family!r}")
        for key in (spec.name, *spec.aliases):
            if key in self.specs or key in self.aliases:
                raise ValueError(f"model name {key!r} is already registered")
        self.specs[spec.name] = spec
        for alias in spec.aliases:
            self.aliases[alias] = spec.name
        return spec

    def remove(self, name: str) -> ModelSpec | None:
        """Take a variant (and its aliases) out again; returns it, or None if absent."""
        spec = self.specs.pop(self.aliases.get(name, name), None)
        if spec is not None:
            for alias in spec.aliases:
                self.aliases.pop(alias, None)
        return spec

    def get(self, name: str) -> ModelSpec:
        """The spec registered under ``name`` or one of its aliases."""
        if not self.families:
            raise RuntimeError("the model registry is empty: import tijeras.catalog to fill it")
        key = self.aliases.get(name, name)
        if key not in self.specs:
            known = ", ".join(sorted(self.specs))
            raise UnknownModelError(f"unknown model {name!r}; known models: {known}")
        return self.specs[key]

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style ``pattern``, sorted."""
        return sorted(n for n in self.specs if fnmatch.fnmatch(n, pattern))

    def instantiate(self, spec: ModelSpec) -> nn.Module:
        """A freshly built module of ``spec`` with random weights."""
        return self.families[spec.family].build(spec.config)

    def describe_checkpoint(self, state_dict: Mapping[str, Any]) -> str:
        """Which registered model a state_dict looks like, in words (for error messages)."""
        for family in self.families.values():
            if family.describe_checkpoint is not None:
                found = family.describe_checkpoint(state_dict)
                if found:
                    return found
        return "not a model tijeras knows"

    def build(
        self,
        name: str,
        checkpoint: str | Path | None = None,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
        decoder_dtype: torch.dtype | None = None,
    ) -> nn.Module:
        """Build a registered model, optionally load its weights strictly, and move it.

        Args:
            name: a registered name (``"sam-vit-b"``) or alias (``"vit_b"``).
            checkpoint: a ``.pth``/``.pt``/``.safetensors`` file, or None for random weights.
            device: where the model runs (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
            dtype: float32 (default), or bfloat16 / float16 for the fast modes.
            decoder_dtype: a different dtype for the prompt side (prompt encoder and mask
                decoder), e.g. float32 behind a bfloat16 image encoder (the model contract's
                ``set_decoder_dtype``; a family without a learned prompt side ignores it).

        Returns:
            The model in eval mode, with ``name`` set to the registered name.
        """
        import torch

        from .checkpoint import load_checkpoint_into
        from .devices import resolve_device

        spec = self.get(name)
        model = self.instantiate(spec)
        if checkpoint is not None:
            load_checkpoint_into(model, checkpoint, spec, self)
        model.eval()
        model = model.to(device=resolve_device(device), dtype=dtype or torch.float32)
        if decoder_dtype is not None:
            model.set_decoder_dtype(decoder_dtype)
        model.name = spec.name
        return model


REGISTRY = Registry()
"""The registry :mod:`tijeras.catalog` fills; import it from there to see every family."""
