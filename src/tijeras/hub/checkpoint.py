"""Checkpoint files: safe loading, family detection and strict loading with clear errors.

Every file is read with ``map_location="cpu"`` and ``weights_only=True`` (or safetensors), so a
checkpoint can never run code and a GPU-saved file loads on a CPU-only machine.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..errors import CheckpointError

if TYPE_CHECKING:
    from torch import nn

    from .registry import ModelSpec, Registry

_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_MAGIC = b"\x80"
_SAFETENSORS_SUFFIX = ".safetensors"
_NESTED_KEYS = ("model", "state_dict")


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a ``.pth``/``.pt``/``.safetensors`` file into a flat state_dict on the CPU.

    Weights nested under a ``model`` or ``state_dict`` key (as in SAM 2 and training files) are
    unwrapped. Raises :class:`CheckpointError` naming the file and what is wrong with it.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise CheckpointError(f"checkpoint path is a directory, not a file: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint file is empty: {path}")
    if path.suffix == _SAFETENSORS_SUFFIX:
        return _load_safetensors(path)
    with path.open("rb") as f:
        head = f.read(4)
    if not head.startswith((_ZIP_MAGIC, _PICKLE_MAGIC)):
        raise CheckpointError(
            f"{path} is not a PyTorch or safetensors checkpoint "
            f"(it starts with bytes {head!r}; expected a .pth/.pt zip or a .safetensors file)"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, zipfile.BadZipFile, EOFError, pickle.UnpicklingError, OSError) as exc:
        text = str(exc)
        reason = text.splitlines()[0] if text else type(exc).__name__
        if "Weights only load failed" in text or "Unsupported global" in text:
            found = [line.strip() for line in text.splitlines() if "GLOBAL" in line]
            detail = f" ({found[0]})" if found else ""
            raise CheckpointError(
                f"{path} holds Python objects other than tensors and was not loaded, since "
                f"loading them could run code{detail}"
            ) from None
        raise CheckpointError(
            f"{path} looks truncated or corrupt (size {path.stat().st_size} bytes): {reason}"
        ) from None
    return _as_state_dict(obj, path)


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file: {exc}") from None


def _as_state_dict(obj: object, path: Path) -> dict[str, torch.Tensor]:
    for key in _NESTED_KEYS:
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{path} does not hold a state_dict (found {type(obj).__name__})")
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: entries that are not tensors: {', '.join(bad[:5])}")
    return dict(obj)


def _describe_mismatch(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor]
) -> tuple[list[str], list[str], list[str]]:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    shapes = [
        f"{k} (file {tuple(state_dict[k].shape)}, model {tuple(v.shape)})"
        for k, v in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    return missing, unexpected, shapes


def _listing(label: str, items: list[str], limit: int = 6) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return f"{len(items)} {label}: {', '.join(items[:limit])}{more}"


def load_state_dict_into(
    model: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    expected: str,
    source: str | Path,
    registry: Registry | None = None,
) -> None:
    """Strictly load ``state_dict`` into ``model`` or raise one clear :class:`CheckpointError`.

    With a ``registry``, the error also says which known model the file looks like.
    """
    missing, unexpected, shapes = _describe_mismatch(model, state_dict)
    if missing or unexpected or shapes:
        looks = (
            ""
            if registry is None
            else f": it looks like {registry.describe_checkpoint(state_dict)}"
        )
        parts = [f"{source} does not match model {expected}{looks}"]
        for label, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", shapes),
        ):
            if items:
                parts.append(_listing(label, items))
        raise CheckpointError("; ".join(parts))
    model.load_state_dict(state_dict, strict=True)


def load_checkpoint_into(
    model: nn.Module, path: str | Path, spec: ModelSpec, registry: Registry | None = None
) -> None:
    """Load a checkpoint file into a freshly built model of ``spec``."""
    state_dict = load_state_dict_file(path)
    if spec.remap is not None:
        try:
            state_dict = spec.remap(state_dict)
        except CheckpointError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
    load_state_dict_into(model, state_dict, spec.name, path, registry)


def verify_checkpoint(path: str | Path, spec: ModelSpec, registry: Registry) -> None:
    """Check that ``path`` loads strictly as ``spec``'s model (raises CheckpointError if not)."""
    load_checkpoint_into(registry.instantiate(spec), path, spec, registry)
