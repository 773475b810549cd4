"""``sam2.sam2_video_predictor``: ``SAM2VideoPredictor`` (loaded on first use)."""

from __future__ import annotations

from typing import Any

__all__ = ["SAM2VideoPredictor"]  # noqa: F822 (loaded by __getattr__)


def __getattr__(name: str) -> Any:
    if name != "SAM2VideoPredictor":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from tijeras.sam2.video_predictor import SAM2VideoPredictor

    return SAM2VideoPredictor
