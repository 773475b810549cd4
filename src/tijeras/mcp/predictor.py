"""The MCP server's view of a :class:`tijeras.Predictor`: numbered single instances.

Points and boxes work with every family; text prompts with the families whose
``input_spec.prompt_kinds`` include ``"text"`` (SAM 3). One image at a time, encoded once.

Shapes: H x W original image pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.predictor import Predictor
from ..errors import PromptError


@dataclass(frozen=True)
class Instance:
    """One segmented object.

    Attributes:
        mask: H x W bool.
        box: x0, y0, x1, y1 in image pixels (the detector's box, else the mask's extent).
        score: the model's score (predicted IoU for clicks, concept score for text).
        source: the prompt that found it, in words.
    """

    mask: np.ndarray
    box: tuple[float, float, float, float]
    score: float
    source: str


class ContractPredictor:
    """Encode one image, then answer point, box and (where the family has it) text prompts."""

    def __init__(self, model: Any) -> None:
        self.predictor = Predictor(model, cache_size=0)

    def set_image(self, image: np.ndarray) -> None:
        """Encode an H x W x 3 uint8 RGB image."""
        self.predictor.set_image(image)

    def predict(
        self,
        points: list[tuple[float, float]] | None,
        labels: list[int] | None,
        box: tuple[float, float, float, float] | None,
    ) -> Instance:
        """The best candidate for points (image pixels, labels 1/0) and/or a box (x0, y0, x1,
        y1 pixels): of three for points alone, the single mask for a box."""
        pred = self.predictor.predict(
            point_coords=np.asarray(points, np.float64) if points else None,
            point_labels=np.asarray(labels, np.int64) if points else None,
            box=None if box is None else np.asarray(box, np.float64),
            multimask_output=box is None,
        )
        mask, score = pred.best()
        source = f"box {list(box)}" if box is not None else f"points {points} labels {labels}"
        return Instance(mask, mask_box(mask), score, source)

    def segment_text(self, phrase: str, threshold: float) -> list[Instance]:
        """Every instance of a noun phrase scoring above ``threshold``, best first."""
        if "text" not in self.predictor.spec.prompt_kinds:
            raise PromptError(
                f"model {self.predictor.model_name} does not take text prompts "
                "(use a SAM 3 model, e.g. --model sam3)"
            )
        found = self.predictor.segment_text(phrase, threshold=threshold)
        return [
            Instance(m, tuple(float(v) for v in b), float(s), f"text {phrase!r}")
            for m, b, s in zip(found.masks, found.boxes.tolist(), found.scores.tolist())
        ]


def mask_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """x0, y0, x1, y1 (exclusive) of a mask's pixels; zeros for an empty mask."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return (0.0, 0.0, 0.0, 0.0)
    return (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
