"""Everything mode: automatic mask generation over a grid of point prompts."""

from __future__ import annotations

from typing import Any


def mask_generator_for(model: Any, **options: Any) -> Any:
    """The everything-mode generator suited to ``model``, built with ``options``.

    A model family with its own generator provides it as ``model.mask_generator(**options)``;
    every other model gets :class:`~tijeras.automatic.generator.SamAutomaticMaskGenerator`.
    Whatever it is, ``generate(image)`` returns Meta's records.
    """
    factory = getattr(model, "mask_generator", None)
    if factory is not None:
        return factory(**options)
    from .generator import SamAutomaticMaskGenerator

    return SamAutomaticMaskGenerator(model, **options)
