"""tijeras: fast, local Segment Anything.

Drop-in names of Meta's ``segment_anything`` (``sam_model_registry``, ``SamPredictor``) and a
native API (``load_model``, ``Predictor``, ``list_models``).
"""

from __future__ import annotations

from . import _runtime  # noqa: F401  (allocator tuning; must run before large allocations)

import torch

from .compat.segment_anything import ResizeLongestSide, SamPredictor, sam_model_registry
from .engine.predictor import Predictor
from .errors import TijerasError
from .model.registry import build_model, get_spec, list_models
from .types import ImageEmbedding, MaskPrediction

__version__ = "0.1.0"


def load_model(
    name: str = "sam-vit-b",
    checkpoint: str | None = None,
    *,
    device: str = "cpu",
    dtype: torch.dtype | str = "float32",
    download: bool = False,
):
    """Build a registered model with its weights.

    Args:
        name: registered name or alias (``tijeras.list_models()``).
        checkpoint: weights file; None uses the cached official file if present (or downloads
            it when ``download`` is True), else keeps random weights only for ``test-*`` models.
        device: ``"cpu"``, ``"cuda"``, ...
        dtype: ``"float32"``, ``"bfloat16"`` or ``"float16"`` (or a torch dtype).
    """
    from .model.download import cached_checkpoint, download as fetch

    spec = get_spec(name)
    if isinstance(dtype, str):
        dtype = _DTYPES.get(dtype)
        if dtype is None:
            raise TijerasError(f"unknown dtype; choose one of {', '.join(_DTYPES)}")
    if checkpoint is None and spec.checkpoint is not None:
        checkpoint = cached_checkpoint(spec.name)
        if checkpoint is None:
            if not download:
                raise TijerasError(
                    f"no weights for {spec.name}: run `tijeras download {spec.name}` "
                    "or pass checkpoint=PATH"
                )
            checkpoint = fetch(spec.name)
    model = build_model(spec.name, checkpoint, device=device, dtype=dtype)
    model.name = spec.name
    return model


_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

__all__ = [
    "ImageEmbedding",
    "MaskPrediction",
    "Predictor",
    "ResizeLongestSide",
    "SamPredictor",
    "TijerasError",
    "build_model",
    "get_spec",
    "list_models",
    "load_model",
    "sam_model_registry",
]
