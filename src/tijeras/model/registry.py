"""The model registry: one ``ModelSpec`` per variant, looked up by name or alias.

``build_model("sam-vit-b", checkpoint=..., device=..., dtype=...)`` is the single way models are
made; the drop-in ``sam_model_registry`` of :mod:`tijeras` delegates here.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..defaults import DEFAULT_MODEL  # noqa: F401  (re-exported)
from ..errors import UnknownModelError
from . import config as cfg

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class CheckpointFile:
    """Where a model's official weights live and how a downloaded copy is verified.

    ``sha256`` is set only where a digest is published by a trustworthy public source; without it
    a download is accepted on its exact ``size`` plus a strict load as the expected model.
    """

    filename: str
    url: str
    size: int | None = None
    sha256: str | None = None

    @property
    def check(self) -> str:
        """The integrity check a download of this file gets: ``"sha256"`` or ``"size+load"``."""
        return "sha256" if self.sha256 else "size+load"


@dataclass(frozen=True)
class ModelSpec:
    """A registered model variant."""

    name: str
    family: str
    config: Any
    description: str = ""
    aliases: tuple[str, ...] = ()
    checkpoint: CheckpointFile | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_SPECS: dict[str, ModelSpec] = {}
_ALIASES: dict[str, str] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add a model variant; a name or alias that is already taken raises ``ValueError``."""
    for key in (spec.name, *spec.aliases):
        if key in _SPECS or key in _ALIASES:
            raise ValueError(f"model name {key!r} is already registered")
    _SPECS[spec.name] = spec
    for alias in spec.aliases:
        _ALIASES[alias] = spec.name
    return spec


def register_builder(family: str, builder: Any) -> None:
    """Say how models of ``family`` are built: ``builder(config) -> nn.Module``."""
    if family in _BUILDERS:
        raise ValueError(f"model family {family!r} already has a builder")
    _BUILDERS[family] = builder


def get_spec(name: str) -> ModelSpec:
    """The spec registered under ``name`` or one of its aliases."""
    key = _ALIASES.get(name, name)
    if key not in _SPECS:
        known = ", ".join(sorted(_SPECS))
        raise UnknownModelError(f"unknown model {name!r}; known models: {known}")
    return _SPECS[key]


def list_models(pattern: str = "*") -> list[str]:
    """Names of the registered models matching a shell-style ``pattern``, sorted."""
    return sorted(n for n in _SPECS if fnmatch.fnmatch(n, pattern))


def build_model(
    name: str,
    checkpoint: str | Path | None = None,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    decoder_dtype: torch.dtype | None = None,
) -> nn.Module:
    """Build a registered model, optionally load its weights strictly, and move it.

    Args:
        name: a registered name (``"sam-vit-b"``) or alias (``"vit_b"``).
        checkpoint: a ``.pth``/``.pt``/``.safetensors`` file, or ``None`` for random weights.
        device: where the model runs (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
        dtype: ``torch.float32``, or ``torch.bfloat16`` / ``torch.float16`` for the fast modes.
        decoder_dtype: a different dtype for the prompt encoder and mask decoder (for example
            float32 behind a bfloat16 image encoder: closer masks, at float32 decoder speed).

    Returns:
        The model in eval mode.
    """
    spec = get_spec(name)
    builder = _BUILDERS[spec.family]
    model = builder(spec.config)
    if checkpoint is not None:
        from .checkpoint import load_checkpoint_into

        load_checkpoint_into(model, checkpoint, spec)
    model.eval()
    model = model.to(device=torch.device(device), dtype=dtype)
    if decoder_dtype is not None:
        for part in ("prompt_encoder", "mask_decoder"):
            getattr(model, part).to(dtype=decoder_dtype)
    return model


def _build_sam(config: cfg.SamConfig) -> nn.Module:
    from .sam import Sam

    return Sam(config)


_BUILDERS: dict[str, Any] = {"sam": _build_sam}

_SAM_URL = "https://dl.fbaipublicfiles.com/segment_anything/"
# Meta publishes no digests. The SHA-256 values below are those recorded by the Git LFS servers of
# several independent public mirrors of these exact files (Hugging Face model repositories that
# uploaded them from Meta's URLs), and match the byte sizes Meta's server reports.

register(
    ModelSpec(
        name="sam-vit-b",
        family="sam",
        config=cfg.SAM_VIT_B,
        description="SAM ViT-B (91M parameters)",
        aliases=("vit_b",),
        checkpoint=CheckpointFile(
            filename="sam_vit_b_01ec64.pth",
            url=_SAM_URL + "sam_vit_b_01ec64.pth",
            size=375042383,
            sha256="ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
        ),
    )
)
register(
    ModelSpec(
        name="sam-vit-l",
        family="sam",
        config=cfg.SAM_VIT_L,
        description="SAM ViT-L (308M parameters)",
        aliases=("vit_l",),
        checkpoint=CheckpointFile(
            filename="sam_vit_l_0b3195.pth",
            url=_SAM_URL + "sam_vit_l_0b3195.pth",
            size=1249524607,
            sha256="3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
        ),
    )
)
register(
    ModelSpec(
        name="sam-vit-h",
        family="sam",
        config=cfg.SAM_VIT_H,
        description="SAM ViT-H (636M parameters)",
        aliases=("vit_h", "default"),
        checkpoint=CheckpointFile(
            filename="sam_vit_h_4b8939.pth",
            url=_SAM_URL + "sam_vit_h_4b8939.pth",
            size=2564550879,
            sha256="a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
        ),
    )
)
register(
    ModelSpec(
        name="test-tiny",
        family="sam",
        config=cfg.SAM_TEST_TINY,
        description="tiny random-weight SAM for tests (no checkpoint)",
    )
)

# Further model families register their specs and builders when their module is imported.
from .. import classic  # noqa: E402, F401
from ..sam2 import specs as _sam2_specs  # noqa: E402,F401  (SAM 2 / SAM 2.1)
from . import mobile_sam  # noqa: E402, F401
