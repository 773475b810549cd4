"""Records passed between the engine, the CLI and the server."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


@dataclass
class ImageEmbedding:
    """An encoded image: everything the decoder needs, so the encoder runs once per image.

    Attributes:
        features: 1 x C x h x w image embedding.
        original_size: (H, W) of the image as given.
        input_size: (h, w) of the resized image inside the padded model input.
        model_name: the registered model that produced it.
        extra: further per-image tensors some model families need (name -> tensor).
        decoder_state: the prompt-independent part of the decoder, computed on first use
            (never saved: it is derived from ``features``).
    """

    features: torch.Tensor
    original_size: tuple[int, int]
    input_size: tuple[int, int]
    model_name: str
    extra: dict[str, torch.Tensor] = field(default_factory=dict)
    decoder_state: Any = field(default=None, repr=False, compare=False)


@dataclass
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
