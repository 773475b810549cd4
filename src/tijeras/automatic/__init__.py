"""Everything mode: automatic mask generation over a grid of point prompts."""

from __future__ import annotations

from typing import Any


def mask_generator_for(model: Any, *, output_mode: str = "binary_mask", **changes: Any) -> Any:
    """The model family's everything-mode generator, with its defaults changed by ``changes``.

    ``changes`` are :class:`~tijeras.automatic.options.EverythingOptions` fields (an unknown
    name raises ``TypeError``; None keeps the default). Whatever the family,
    ``generate(image)`` returns Meta's records.
    """
    options = model.everything_defaults.replace(**changes)
    return model.mask_generator(options, output_mode=output_mode)
