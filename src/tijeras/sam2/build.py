"""``build_sam2``: Meta's builder signature, typed configs instead of Hydra, works on CPU."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

import torch

from ..errors import TijerasError, UnknownModelError
from ..model.registry import ModelSpec, get_spec


def resolve_config(config_file: str) -> ModelSpec:
    """The registered SAM 2 spec for a config name, alias or path to one of Meta's configs."""
    name = str(config_file)
    candidates = [name, PurePosixPath(name.replace("\\", "/")).name]
    candidates.append(candidates[-1].removesuffix(".yaml"))
    for candidate in candidates:
        try:
            spec = get_spec(candidate)
        except UnknownModelError:
            continue
        if spec.family == "sam2":
            return spec
    raise UnknownModelError(
        f"unknown SAM 2 config {config_file!r}; use a name such as 'sam2.1-hiera-tiny' or one "
        "of Meta's config names such as 'configs/sam2.1/sam2.1_hiera_t.yaml'"
    )


def _device(device: str | torch.device) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        warnings.warn("CUDA is not available; building the SAM 2 model on the CPU", stacklevel=3)
        return torch.device("cpu")
    return dev


def build_sam2(
    config_file: str,
    ckpt_path: str | Path | None = None,
    device: str | torch.device = "cuda",
    mode: str = "eval",
    hydra_overrides_extra: list[str] | None = None,
    apply_postprocessing: bool = True,
    **kwargs: Any,
) -> torch.nn.Module:
    """Build a SAM 2 / SAM 2.1 model and load its checkpoint strictly.

    Args:
        config_file: a registered name (``"sam2.1-hiera-tiny"``) or Meta's config name
            (``"configs/sam2.1/sam2.1_hiera_t.yaml"``, ``"sam2.1_hiera_t.yaml"``, ...).
        ckpt_path: Meta's ``.pt`` file (weights under ``model``), or None for random weights.
        device: where the model runs; ``"cuda"`` without a GPU falls back to the CPU with a
            warning.
        mode: ``"eval"`` or ``"train"``.
        hydra_overrides_extra: not supported (there is no Hydra config); must be empty.
        apply_postprocessing: when True (Meta's default) a single requested mask falls back to
            the best multimask candidate where it is unstable.
    """
    if hydra_overrides_extra:
        raise TijerasError(
            "hydra_overrides_extra is not supported: tijeras builds SAM 2 from typed configs "
            f"(got {list(hydra_overrides_extra)})"
        )
    if mode not in ("eval", "train"):
        raise ValueError(f"mode must be 'eval' or 'train', got {mode!r}")
    from ..model.checkpoint import load_checkpoint_into
    from .model import Sam2Model

    spec = resolve_config(config_file)
    config = spec.config
    if not apply_postprocessing:
        decoder = replace(config.decoder, dynamic_multimask_via_stability=False)
        config = replace(config, decoder=decoder)
    model = Sam2Model(config)
    if ckpt_path is not None:
        load_checkpoint_into(model, ckpt_path, spec)
    model = model.to(_device(device))
    model.name = spec.name
    return model.train(mode == "train")
