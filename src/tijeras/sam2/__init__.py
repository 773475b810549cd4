"""SAM 2 and SAM 2.1 image models with Meta's API: change one import and keep the rest.

from tijeras.sam2 import build_sam2, SAM2ImagePredictor, SAM2AutomaticMaskGenerator

model = build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", "sam2.1_hiera_tiny.pt", device="cpu")
predictor = SAM2ImagePredictor(model)
"""

from __future__ import annotations

from typing import Any

__all__ = ["SAM2AutomaticMaskGenerator", "SAM2ImagePredictor", "Sam2Model", "build_sam2"]

_EXPORTS = {
    "build_sam2": ".build",
    "SAM2ImagePredictor": ".predictor",
    "SAM2AutomaticMaskGenerator": ".generator",
    "Sam2Model": "..models.sam2.model",
    "build_sam2_video_predictor": ".video_predictor",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
