"""``sam2.build_sam``: the SAM 2 builders (configs by Meta's names, weights from the caches)."""

from __future__ import annotations

from typing import Any

from tijeras.sam2.build import build_sam2, build_sam2_hf, hf_checkpoint

__all__ = [
    "build_sam2",
    "build_sam2_hf",
    "build_sam2_video_predictor",
    "build_sam2_video_predictor_hf",
]


def build_sam2_video_predictor(*args: Any, **kwargs: Any) -> Any:
    """Meta's ``build_sam2_video_predictor`` (see :mod:`tijeras.sam2.video_predictor`)."""
    from tijeras.sam2.video_predictor import build_sam2_video_predictor as build

    return build(*args, **kwargs)


def build_sam2_video_predictor_hf(model_id: str, **kwargs: Any) -> Any:
    """``build_sam2_video_predictor`` with the config and weights of a Hugging Face id, the
    weights taken from the caches (never downloaded; see :func:`tijeras.sam2.build.hf_checkpoint`)."""
    spec, path = hf_checkpoint(model_id)
    return build_sam2_video_predictor(spec.name, path, **kwargs)
