"""The one list of model families, and the registry they fill.

Adding a family is one folder under :mod:`tijeras.models` plus one entry in :data:`FAMILIES`.
This module and the families' spec modules are torch-free, so listing models or building the
CLI's help does not load PyTorch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .hub.registry import REGISTRY, Family, ModelSpec
from .models import classic, sam, sam2, sam3

if TYPE_CHECKING:
    import torch
    from torch import nn

FAMILIES: tuple[Family, ...] = (sam.FAMILY, sam2.FAMILY, sam3.FAMILY, classic.FAMILY)

for _family in FAMILIES:
    if _family.name not in REGISTRY.families:
        REGISTRY.add_family(_family)


def get_spec(name: str) -> ModelSpec:
    """The spec registered under ``name`` or one of its aliases."""
    return REGISTRY.get(name)


def list_models(pattern: str = "*") -> list[str]:
    """Names of the registered models matching a shell-style ``pattern``, sorted."""
    return REGISTRY.names(pattern)


def build_model(
    name: str,
    checkpoint: str | Path | None = None,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    decoder_dtype: torch.dtype | None = None,
) -> nn.Module:
    """Build a registered model with random weights or a checkpoint, in eval mode.

    See :meth:`tijeras.hub.registry.Registry.build` for the arguments.
    """
    return REGISTRY.build(name, checkpoint, device=device, dtype=dtype, decoder_dtype=decoder_dtype)
