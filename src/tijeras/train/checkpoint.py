"""Saving fine-tuned weights in Meta's checkpoint format, and training-state files for resuming.

A fine-tuned file is a flat ``state_dict`` (float32, CPU tensors) with the key names of Meta's
``segment_anything`` (the names tijeras' modules use), LoRA adapters merged into the weights, so
``segment_anything.sam_model_registry["vit_b"](checkpoint=path)`` and ``tijeras`` load it as an
official file. A training-state file holds what resuming needs: the trainable weights, the
optimizer and scheduler states, the epoch and step, and the random generators' states.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError
from .lora import merged_state_dict

STATE_FORMAT = "tijeras-train-state/1"


def meta_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's weights as Meta's flat state_dict: LoRA merged, float32, on the CPU."""
    state = merged_state_dict(model)
    out = {}
    for key, value in state.items():
        value = value.detach().to("cpu")
        out[key] = value.float() if value.is_floating_point() else value
        out[key] = out[key].contiguous().clone()
    return out


def _atomic_save(obj: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


def save_meta_checkpoint(model: nn.Module, path: str | Path) -> Path:
    """Write the model's weights to ``path`` (a ``.pth`` file Meta's loader accepts)."""
    return _atomic_save(meta_state_dict(model), Path(path))


def save_training_state(path: str | Path, state: dict[str, Any]) -> Path:
    """Write a training-state dict (tensors, numbers, strings, lists and dicts only)."""
    return _atomic_save({"format": STATE_FORMAT, **state}, Path(path))


def load_training_state(path: str | Path) -> dict[str, Any]:
    """Read a file written by :func:`save_training_state` (no code can run on load).

    Raises:
        CheckpointError: the file is missing or not a tijeras training state.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"training-state file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 (torch raises several kinds for corrupt files)
        raise CheckpointError(f"{path} is not a readable training-state file: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path} is not a tijeras training-state file")
    return state


def rng_state(generator: torch.Generator, numpy_rng: Any) -> dict[str, Any]:
    """The states of the sampling generator, numpy's generator and torch's global ones."""
    state = {
        "sampler": generator.get_state(),
        "numpy": numpy_rng.bit_generator.state,
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any], generator: torch.Generator, numpy_rng: Any) -> None:
    """Inverse of :func:`rng_state`."""
    generator.set_state(state["sampler"])
    numpy_rng.bit_generator.state = state["numpy"]
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
