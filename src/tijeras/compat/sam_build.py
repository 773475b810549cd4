"""Meta's SAM builders and ``sam_model_registry``, on tijeras' model registry.

``sam_model_registry`` is a real ``dict`` (Meta's keys ``default``, ``vit_h``, ``vit_l``,
``vit_b``, and MobileSAM's ``vit_t``), so user code can add or replace builders
(``sam_model_registry["my_vit"] = build_my_vit``, ``.update(...)``). A key it does not hold but
that names a registered tijeras model or alias (``"sam-vit-b"``, ``"mobile_sam"``,
``"test-tiny"``) still gives that model's builder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tijeras.catalog import build_model, get_spec
from tijeras.errors import UnknownModelError

if TYPE_CHECKING:
    from torch import nn


def _builder(name: str) -> Callable[..., nn.Module]:
    def build(checkpoint: str | Path | None = None) -> nn.Module:
        return build_model(name, checkpoint)

    build.__name__ = f"build_{name.replace('-', '_')}"
    build.__doc__ = (
        f"Build {name} on the CPU in eval mode, with the weights of ``checkpoint`` (loaded "
        "strictly, CPU-mapped, weights only) or random weights when None."
    )
    return build


def build_sam_vit_h(checkpoint: str | Path | None = None) -> nn.Module:
    """SAM ViT-H (``sam_vit_h_4b8939.pth``), on the CPU in eval mode."""
    return build_model("sam-vit-h", checkpoint)


def build_sam_vit_l(checkpoint: str | Path | None = None) -> nn.Module:
    """SAM ViT-L (``sam_vit_l_0b3195.pth``), on the CPU in eval mode."""
    return build_model("sam-vit-l", checkpoint)


def build_sam_vit_b(checkpoint: str | Path | None = None) -> nn.Module:
    """SAM ViT-B (``sam_vit_b_01ec64.pth``), on the CPU in eval mode."""
    return build_model("sam-vit-b", checkpoint)


def build_sam_vit_t(checkpoint: str | Path | None = None) -> nn.Module:
    """MobileSAM (``mobile_sam.pt``), on the CPU in eval mode."""
    return build_model("mobile-sam", checkpoint)


build_sam = build_sam_vit_h


class SamModelRegistry(dict):
    """Meta's ``sam_model_registry``: key -> ``builder(checkpoint=None)``.

    Looking up a key it does not hold tries the tijeras model registry (names and aliases)
    before raising a ``KeyError`` that lists the keys.
    """

    def __missing__(self, key: str) -> Callable[..., Any]:
        try:
            spec = get_spec(key)
        except (UnknownModelError, TypeError):
            raise UnknownModelError(
                f"unknown model type {key!r}; sam_model_registry holds {', '.join(self)} "
                "(and every name of tijeras.list_models())"
            ) from None
        return _builder(spec.name)


sam_model_registry = SamModelRegistry(
    default=build_sam_vit_h,
    vit_h=build_sam_vit_h,
    vit_l=build_sam_vit_l,
    vit_b=build_sam_vit_b,
    vit_t=build_sam_vit_t,
)
