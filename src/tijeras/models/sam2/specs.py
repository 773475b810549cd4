"""The SAM 2 family's registered variants (SAM 2.0 and 2.1, Hiera-T/S/B+/L) and its builder.

Torch-free; listed in :mod:`tijeras.catalog`. Meta's config names are aliases (``configs/sam2.1/sam2.1_hiera_t.yaml``, ``sam2.1_hiera_t.yaml``,
``sam2.1_hiera_t``, ...), so ``build_sam2(config_name, ...)`` resolves them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ...automatic.options import SAM2_EVERYTHING
from ...errors import CheckpointError
from ...hub.registry import CheckpointFile, Family, ModelSpec
from . import config as cfg

if TYPE_CHECKING:
    import torch
    from torch import nn

_URLS = {
    "2.1": "https://dl.fbaipublicfiles.com/segment_anything_2/092824/",
    "2.0": "https://dl.fbaipublicfiles.com/segment_anything_2/072824/",
}
# Meta publishes no sizes or digests for these files: a download is accepted after a strict
# load as the expected model.
_VARIANTS = (
    # (name suffix, file suffix, short config suffix, description, 2.1 config, 2.0 config)
    ("tiny", "tiny", "t", "Hiera-T", cfg.SAM2_1_HIERA_TINY, cfg.SAM2_HIERA_TINY),
    ("small", "small", "s", "Hiera-S", cfg.SAM2_1_HIERA_SMALL, cfg.SAM2_HIERA_SMALL),
    (
        "base-plus",
        "base_plus",
        "b+",
        "Hiera-B+",
        cfg.SAM2_1_HIERA_BASE_PLUS,
        cfg.SAM2_HIERA_BASE_PLUS,
    ),
    ("large", "large", "l", "Hiera-L", cfg.SAM2_1_HIERA_LARGE, cfg.SAM2_HIERA_LARGE),
)
VERSION_2_1_KEYS = ("no_obj_embed_spatial", "obj_ptr_tpos_proj.weight")


def _aliases(version: str, short: str, file_suffix: str) -> tuple[str, ...]:
    stem = "sam2.1" if version == "2.1" else "sam2"
    folder = "sam2.1" if version == "2.1" else "sam2"
    base = f"{stem}_hiera_{short}"
    names = [f"configs/{folder}/{base}.yaml", f"{base}.yaml", base, f"{stem}_hiera_{file_suffix}"]
    names.append(f"facebook/{stem}-hiera-{file_suffix.replace('_', '-')}")
    return tuple(dict.fromkeys(names))


def check_version(state_dict: Mapping[str, Any], version: str, name: str) -> None:
    """Raise a clear error when a SAM 2.0 file is given as 2.1 or the reverse."""
    if not any(k.startswith("image_encoder.trunk.") for k in state_dict):
        return
    found = "2.1" if all(k in state_dict for k in VERSION_2_1_KEYS) else "2.0"
    if found != version:
        hint = "sam2.1-hiera-*" if found == "2.1" else "sam2-hiera-*"
        raise CheckpointError(
            f"this checkpoint looks like a SAM {found} file, but model {name} is SAM {version} "
            f"(SAM 2.1 files have {', '.join(VERSION_2_1_KEYS)}); load it as {hint}"
        )


def _remap_for(version: str, name: str) -> Callable[[dict], dict]:
    def remap(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        check_version(state_dict, version, name)
        return state_dict

    return remap


def build(config: cfg.Sam2Config) -> nn.Module:
    """A SAM 2 module with random weights."""
    from .model import Sam2Model

    return Sam2Model(config)


_HIERA_SIZES = {(96, 12): "tiny", (96, 16): "small", (112, 24): "base-plus", (144, 48): "large"}


def describe_checkpoint(state_dict: Mapping[str, Any]) -> str | None:
    """SAM 2.0 or 2.1 (2.1 files add ``no_obj_embed_spatial``) and the Hiera size, or None."""
    if not any(k.startswith("image_encoder.trunk.") for k in state_dict):
        return None
    version = "2.1" if "no_obj_embed_spatial" in state_dict else "2.0"
    weight = state_dict.get("image_encoder.trunk.patch_embed.proj.weight")
    depth = len(
        {k.split(".")[3] for k in state_dict if k.startswith("image_encoder.trunk.blocks.")}
    )
    width = int(weight.shape[0]) if weight is not None else 0
    size = _HIERA_SIZES.get((width, depth))
    prefix = "sam2.1" if version == "2.1" else "sam2"
    which = f" ({prefix}-hiera-{size})" if size else f" (Hiera width {width}, {depth} blocks)"
    return f"a SAM {version} model{which}"


def _specs() -> tuple[ModelSpec, ...]:
    specs = []
    for suffix, file_suffix, short, label, config_2_1, config_2_0 in _VARIANTS:
        for version, config in (("2.1", config_2_1), ("2.0", config_2_0)):
            stem = "sam2.1" if version == "2.1" else "sam2"
            name = f"{stem}-hiera-{suffix}"
            filename = f"{stem}_hiera_{file_suffix}.pt"
            specs.append(
                ModelSpec(
                    name=name,
                    family="sam2",
                    config=config,
                    description=f"SAM {version} {label}",
                    aliases=_aliases(version, short, file_suffix),
                    checkpoint=CheckpointFile(filename=filename, url=_URLS[version] + filename),
                    everything=SAM2_EVERYTHING,
                    remap=_remap_for(version, name),
                )
            )
    specs.append(
        ModelSpec(
            name="sam2-test-tiny",
            family="sam2",
            config=cfg.SAM2_TEST_TINY,
            description="tiny random-weight SAM 2.1 for tests (no checkpoint)",
            everything=SAM2_EVERYTHING,
        )
    )
    return tuple(specs)


FAMILY = Family(name="sam2", build=build, specs=_specs(), describe_checkpoint=describe_checkpoint)
