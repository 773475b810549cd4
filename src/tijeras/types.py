"""Records passed between the model families, the engine, the CLI and the server.

Every record here is a frozen dataclass: a model never writes into a record it was given, and a
record handed to several callers (an embedding shared by the server's requests) cannot change
under them. Shapes use one legend: B prompts, N points per prompt, C mask candidates, H x W
original image pixels, h x w low-res logits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class ImageEmbedding:
    """An encoded image: everything the decoder needs, so the encoder runs once per image.

    Attributes:
        features: 1 x C x h x w image embedding.
        original_size: (H, W) of the image as given.
        input_size: (h, w) of the resized image inside the model input.
        model_name: the registered model that produced it.
        extra: further per-image tensors some families need (SAM 2's high-resolution levels),
            name -> tensor.
    """

    features: torch.Tensor
    original_size: tuple[int, int]
    input_size: tuple[int, int]
    model_name: str
    extra: Mapping[str, torch.Tensor] = field(default_factory=dict)

    def to(self, device: torch.device | str, dtype: torch.dtype) -> ImageEmbedding:
        """The same embedding with its tensors on ``device`` in ``dtype``."""
        return replace(
            self,
            features=self.features.to(device, dtype),
            extra={k: v.to(device, dtype) for k, v in self.extra.items()},
        )


@dataclass(frozen=True)
class PreparedImage:
    """An embedding with the prompt-independent part of its family's decoder computed.

    ``state`` belongs to the family that made it (its own frozen record); callers only pass it
    back to the same model's ``decode``. Held by a :class:`~tijeras.Predictor` for as long as
    its image is current, so every prompt on an image shares it.
    """

    embedding: ImageEmbedding
    state: Any = field(repr=False, compare=False)


@dataclass(frozen=True)
class PromptBatch:
    """B prompts in the model's input frame (pixels of the resized image).

    Attributes:
        points: B x N x 2 xy points, or None.
        labels: B x N point labels (1 foreground, 0 background, -1 padding), with ``points``.
        boxes: B x 4 boxes x0, y0, x1, y1, or None.
        masks: B x 1 x h x w low-res logits of an earlier prediction, or None.
        text: one noun phrase per prompt (text-prompted families), or None.
        exemplar_boxes: B x E x 4 example boxes of the concept to find, or None.
        exemplar_labels: B x E labels of the exemplars (1 positive, 0 negative).
    """

    points: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    boxes: torch.Tensor | None = None
    masks: torch.Tensor | None = None
    text: tuple[str, ...] | None = None
    exemplar_boxes: torch.Tensor | None = None
    exemplar_labels: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if (self.points is None) != (self.labels is None):
            raise ValueError("PromptBatch: points and labels go together")
        if self.points is not None and self.points.shape[:-1] != self.labels.shape:
            raise ValueError(
                f"PromptBatch: labels {tuple(self.labels.shape)} do not fit points "
                f"{tuple(self.points.shape)}"
            )
        sizes = {len(v) for v in self._batched() if v is not None}
        if len(sizes) > 1:
            raise ValueError(f"PromptBatch: batch sizes differ: {sorted(sizes)}")
        if not sizes:
            raise ValueError("PromptBatch: no prompt (points, box, mask, text or exemplar)")

    def _batched(self) -> tuple[Any, ...]:
        return (self.points, self.boxes, self.masks, self.text, self.exemplar_boxes)

    def __len__(self) -> int:
        return next(len(v) for v in self._batched() if v is not None)

    @property
    def kinds(self) -> frozenset[str]:
        """The prompt kinds present: ``points``, ``boxes``, ``masks``, ``text``, ``exemplars``."""
        names = ("points", "boxes", "masks", "text", "exemplars")
        return frozenset(n for n, v in zip(names, self._batched()) if v is not None)


@dataclass(frozen=True)
class Decoded:
    """What a model's decoder returns for a :class:`PromptBatch`.

    Attributes:
        low_res_logits: B x C x h x w mask logits in the model's low-res frame.
        iou_scores: B x C predicted IoU (or quality score) of each candidate.
        object_scores: B x 1 logits that the object is present (SAM 2), or None.
        extra: further outputs of a family (boxes of found instances, presence scores...).
    """

    low_res_logits: torch.Tensor
    iou_scores: torch.Tensor
    object_scores: torch.Tensor | None = None
    extra: Mapping[str, torch.Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class MaskPrediction:
    """Masks for one prompt (C candidates) or a batch of prompts (B x C).

    Attributes:
        masks: [B x] C x H x W bool masks (float logits when asked for logits).
        scores: [B x] C predicted IoU of each candidate.
        low_res_logits: [B x] C x 256 x 256 logits, usable as the next ``mask_input``.
    """

    masks: np.ndarray
    scores: np.ndarray
    low_res_logits: np.ndarray

    def best(self) -> tuple[np.ndarray, float]:
        """The highest-scoring candidate of a single-prompt prediction and its score."""
        if self.scores.ndim != 1:
            raise ValueError("best() applies to a single prompt; index the batch first")
        i = int(np.argmax(self.scores))
        return self.masks[i], float(self.scores[i])


@dataclass(frozen=True)
class Instances:
    """Every instance of a concept (a noun phrase and/or exemplar boxes) found in one image.

    Attributes:
        masks: N x H x W bool masks in original image pixels.
        boxes: N x 4 float32 boxes x0, y0, x1, y1 in original pixels (the detector's boxes,
            clipped to the image).
        scores: N float32 scores in [0, 1], highest first.
        text: the phrase asked for, or None when only exemplar boxes were given.
        presence: 0-1, how sure the model is that the concept is in the image at all.
    """

    masks: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    text: str | None = None
    presence: float = 0.0

    def __len__(self) -> int:
        return int(self.scores.shape[0])
