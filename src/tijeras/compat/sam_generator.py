"""Meta's ``SamAutomaticMaskGenerator`` with Meta's ``predictor`` attribute.

Everything mode itself is tijeras' generator (:mod:`tijeras.automatic.generator`); what this
class adds is ``generator.predictor``, a :class:`~tijeras.compat.sam_predictor.SamPredictor`
on the same model, so code such as ``masks, scores, logits = generator.predictor.predict(...)``
runs as it does with Meta's package.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

from tijeras.automatic import generator as native

from .sam_predictor import SamPredictor, _writable


class SamAutomaticMaskGenerator(native.SamAutomaticMaskGenerator):
    """Generate masks for a whole image from a grid of point prompts (Meta's signature).

    The arguments and their defaults are Meta's; see
    :class:`tijeras.automatic.generator.SamAutomaticMaskGenerator`.
    """

    predictor: SamPredictor

    @functools.wraps(native.SamAutomaticMaskGenerator.__init__)
    def __init__(self, model: torch.nn.Module, *args: Any, **kwargs: Any) -> None:
        super().__init__(model, *args, **kwargs)
        self.predictor = SamPredictor(model)

    def generate(self, image: np.ndarray, embedding: Any = None) -> list[dict[str, Any]]:
        """Masks for an H x W x 3 uint8 RGB image: Meta's records (see the native generator).

        As with Meta's generator, :attr:`predictor` holds no image afterwards.
        """
        try:
            return super().generate(_writable(image), embedding)
        finally:
            self.predictor.reset_image()

    def to_output(self, data: native.MaskRecords) -> list[dict[str, Any]]:
        """Meta's records; ``bbox`` and ``crop_box`` hold floats where Meta's do (see
        :func:`~tijeras.automatic.records.records_to_output`)."""
        return native.records_to_output(data, self.output_mode, meta_types=True)
