"""tijeras: fast, local Segment Anything.

Drop-in names of Meta's ``segment_anything`` (``sam_model_registry``, ``SamPredictor``,
``ResizeLongestSide``) and a native API (``load_model``, ``Predictor``, ``list_models``).
Submodules load on first use, so ``import tijeras`` is cheap and the allocator tuning in
:mod:`tijeras._runtime` runs before PyTorch allocates anything.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import _runtime  # noqa: F401
from .errors import TijerasError

__version__ = "0.1.0"

_EXPORTS = {
    "sam_model_registry": "tijeras.compat.segment_anything",
    "SamPredictor": "tijeras.compat.segment_anything",
    "ResizeLongestSide": "tijeras.compat.segment_anything",
    "SamAutomaticMaskGenerator": "tijeras.compat.segment_anything",
    "Predictor": "tijeras.engine.predictor",
    "build_model": "tijeras.catalog",
    "get_spec": "tijeras.catalog",
    "list_models": "tijeras.catalog",
    "ImageEmbedding": "tijeras.types",
    "MaskPrediction": "tijeras.types",
    "PromptBatch": "tijeras.types",
    "Decoded": "tijeras.types",
    "EverythingOptions": "tijeras.automatic.options",
    "SegmentationModel": "tijeras.contract",
    "load_model": "tijeras.api",
}

__all__ = ["TijerasError", "__version__", *_EXPORTS]  # noqa: PLE0604 (the keys: strings)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tijeras' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
