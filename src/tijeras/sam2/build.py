"""``build_sam2``: Meta's builder signature, typed configs instead of Hydra, works on CPU."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

import torch

from ..catalog import REGISTRY, get_spec
from ..errors import TijerasError, UnknownModelError
from ..hub.registry import ModelSpec


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


def build_sam2(
    config_file: str,
    ckpt_path: str | Path | None = None,
    device: str | torch.device = "cuda",
    mode: str = "eval",
    hydra_overrides_extra: list[str] | None = None,
    apply_postprocessing: bool = True,
) -> torch.nn.Module:
    """Build a SAM 2 / SAM 2.1 model and load its checkpoint strictly.

    Args:
        config_file: a registered name (``"sam2.1-hiera-tiny"``) or Meta's config name
            (``"configs/sam2.1/sam2.1_hiera_t.yaml"``, ``"sam2.1_hiera_t.yaml"``, ...).
        ckpt_path: Meta's ``.pt`` file (weights under ``model``), or None for random weights.
        device: where the model runs (Meta's default ``"cuda"``; on a machine without CUDA
            that is an error naming the device, as in Meta's package: pass ``device="cpu"``).
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
    from ..hub.checkpoint import load_checkpoint_into
    from ..hub.devices import resolve_device
    from ..models.sam2.model import Sam2Model

    spec = resolve_config(config_file)
    config = spec.config
    if not apply_postprocessing:
        decoder = replace(config.decoder, dynamic_multimask_via_stability=False)
        config = replace(config, decoder=decoder)
    dev = resolve_device(device)
    model = Sam2Model(config)
    if ckpt_path is not None:
        load_checkpoint_into(model, ckpt_path, spec, REGISTRY)
    model = model.to(dev)
    model.name = spec.name
    return model.train(mode == "train")


def hf_checkpoint(model_id: str, cache: str | Path | None = None) -> tuple[ModelSpec, Path]:
    """The model and weights file of a Hugging Face id (``"facebook/sam2.1-hiera-tiny"``) or
    registered name, found without any download: in tijeras' cache (``tijeras download``),
    else in the Hugging Face cache where Meta's ``build_sam2_hf`` left it.

    Raises:
        UnknownModelError: not a SAM 2 model.
        CheckpointError: the file is in neither cache; the message says how to get it.
    """
    from ..errors import CheckpointError
    from ..hub.download import cache_dir, cached_checkpoint

    spec = resolve_config(model_id)
    found = cached_checkpoint(spec.name, cache) or _hf_cached(model_id, spec)
    if found is None:
        filename = spec.checkpoint.filename if spec.checkpoint else "?"
        raise CheckpointError(
            f"no weights for {model_id!r} ({spec.name}): run `tijeras download {spec.name}` "
            f"(it saves {filename} in {cache_dir(cache)}), or pass the file: "
            f"build_sam2({spec.name!r}, 'path/to/{filename}')"
        )
    return spec, Path(found)


def _hf_cached(model_id: str, spec: ModelSpec) -> str | None:
    """The file in the Hugging Face cache (no network), if huggingface_hub is installed."""
    if spec.checkpoint is None or "/" not in model_id:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(model_id, spec.checkpoint.filename)
    return found if isinstance(found, str) else None


def build_sam2_hf(model_id: str, **kwargs: Any) -> torch.nn.Module:
    """Meta's ``build_sam2_hf``: :func:`build_sam2` with the config and weights of a Hugging
    Face id, the weights taken from the caches (see :func:`hf_checkpoint`), never downloaded.

    ``kwargs`` are :func:`build_sam2`'s (``device`` defaults to ``"cuda"`` there, as Meta's).
    """
    spec, path = hf_checkpoint(model_id)
    return build_sam2(spec.name, path, **kwargs)
