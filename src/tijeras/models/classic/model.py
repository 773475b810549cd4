"""``ClassicModel``: the weightless backend behind the predictor interface of the SAM models.

The "image embedding" is the resized image itself, zero-padded to ``image_size`` squared
(1 x 3 x S x S, values 0..255), so it is stored, cached and saved like SAM's. Prompts are
segmented by :mod:`tijeras.classic.grabcut` at that resolution; the low-res logits are S x S
signed distance maps (positive inside), which a later prompt can take back as ``mask_input``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...automatic.options import SAM_EVERYTHING, EverythingOptions
from ...contract import InputSpec
from ...types import Decoded, ImageEmbedding, PreparedImage, PromptBatch
from .config import ClassicConfig
from .grabcut import Prompt, distinct_candidates, segment, to_logits


class ClassicModel(nn.Module):
    """GrabCut prompts and Felzenszwalb everything mode, with no parameters.

    Args:
        config: the backend's parameters (see :class:`ClassicConfig`).
    """

    image_format = "RGB"
    everything_defaults = SAM_EVERYTHING

    def __init__(self, config: ClassicConfig) -> None:
        super().__init__()
        self.config = config
        self.mask_threshold = config.mask_threshold
        size = config.image_size
        self.input_spec = InputSpec(
            image_size=size,
            resize="longest_side",
            embedding_grid=(size, size),
            mask_input_size=(size, size),
            mask_threshold=config.mask_threshold,
        )
        # Carries the device and dtype given to .to(); not part of the state_dict.
        self.register_buffer("anchor", torch.zeros(1), persistent=False)

    # ------------------------------------------------ the model contract
    @property
    def device(self) -> torch.device:
        return self.anchor.device

    @property
    def dtype(self) -> torch.dtype:
        return self.anchor.dtype

    @property
    def encoder_dtype(self) -> torch.dtype:
        return self.anchor.dtype

    @property
    def image_size(self) -> int:
        return self.config.image_size

    def set_decoder_dtype(self, dtype: torch.dtype) -> None:
        """Nothing to convert: the classical backend has no learned prompt side."""

    def encoder_blocks(self) -> list[nn.Module]:
        return []  # no encoder: the "embedding" is the image itself

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """B x 3 x h x w resized image (0-255) -> B x 3 x S x S, zero-padded, model dtype."""
        size = self.config.image_size
        h, w = x.shape[-2:]
        return F.pad(x.to(self.dtype), (0, size - w, 0, size - h))

    def encode_image(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The "embedding" of a 1 x 3 x S x S input is the input itself."""
        return x, {}

    def prepare(self, embedding: ImageEmbedding) -> PreparedImage:
        """The h x w x 3 uint8 working image (its regions are computed when first needed)."""
        h, w = embedding.input_size
        pixels = embedding.features[0, :, :h, :w].float().round().clamp(0, 255)
        image = np.ascontiguousarray(pixels.to(torch.uint8).permute(1, 2, 0).cpu().numpy())
        return PreparedImage(embedding, WorkingImage(image, self.config))

    @torch.inference_mode()
    def decode(
        self,
        prepared: PreparedImage,
        prompts: PromptBatch,
        *,
        multimask: bool,
        masks_only: bool = False,
    ) -> Decoded:
        """Low-res logits (B x C x S x S) and scores (B x C) for input-frame prompts.

        C is 3 with ``multimask``, else 1 (the best-scoring candidate). Prompts of a batch are
        segmented one after another. ``masks_only`` changes nothing here.
        """
        working: WorkingImage = prepared.state
        image = working.image
        h, w = image.shape[:2]
        points = None if prompts.points is None else (prompts.points, prompts.labels)
        batch = _split_prompts(points, prompts.boxes, prompts.masks, h, w)
        size, clip = self.config.image_size, self.config.logit_clip
        all_logits, all_scores = [], []
        for prompt in batch:
            candidates, scores = segment(image, prompt, self.config, lambda: working.regions)
            if multimask:
                candidates, scores = distinct_candidates(candidates, scores)
            else:
                best = int(np.argmax(scores))
                candidates, scores = candidates[best : best + 1], scores[best : best + 1]
            all_logits.append(np.stack([to_logits(m, size, clip) for m in candidates]))
            all_scores.append(scores)
        logits = _stack_padded(all_logits)
        scores = _stack_padded([s[:, None, None] for s in all_scores])[:, :, 0, 0]
        return Decoded(
            torch.from_numpy(logits).to(self.device, self.dtype),
            torch.from_numpy(scores).to(self.device, self.dtype),
        )

    def postprocess_masks(
        self,
        masks: torch.Tensor,
        input_size: tuple[int, ...],
        original_size: tuple[int, ...],
    ) -> torch.Tensor:
        """Low-res logits (B x C x S x S) -> logits at the original size (B x C x H x W).

        Removes the padding beyond ``input_size`` and resizes bilinearly to ``original_size``.
        """
        masks = masks[..., : int(input_size[0]), : int(input_size[1])].float()
        size = (int(original_size[0]), int(original_size[1]))
        return F.interpolate(masks, size=size, mode="bilinear", align_corners=False)

    def mask_generator(self, options: EverythingOptions, output_mode: str = "binary_mask") -> Any:
        """The everything-mode generator (Felzenszwalb regions)."""
        from .everything import ClassicMaskGenerator

        return ClassicMaskGenerator(self, options, output_mode=output_mode)


class WorkingImage:
    """The prepared state of an image: its pixels, and its regions once first asked for."""

    def __init__(self, image: np.ndarray, config: ClassicConfig) -> None:
        self.image = image
        self._config = config

    @functools.cached_property
    def regions(self) -> np.ndarray:
        """Felzenszwalb regions of the working image, computed once."""
        from .regions import over_segment

        return over_segment(self.image, 32, self._config)


def _split_prompts(
    points: tuple[torch.Tensor, torch.Tensor] | None,
    boxes: torch.Tensor | None,
    masks: torch.Tensor | None,
    h: int,
    w: int,
) -> list[Prompt]:
    """Batched input-frame tensors -> one :class:`Prompt` per batch element."""
    sizes = [len(t) for t in (points[0] if points else None, boxes, masks) if t is not None]
    if not sizes:
        raise ValueError("no prompt given: pass points, a box or a mask input")
    batch = sizes[0]
    coords = labels = None
    if points is not None:
        coords = points[0].detach().float().cpu().numpy().reshape(batch, -1, 2)
        labels = points[1].detach().cpu().numpy().astype(np.int64).reshape(batch, -1)
    box_arr = None if boxes is None else boxes.detach().float().cpu().numpy().reshape(batch, 4)
    mask_arr = None if masks is None else masks.detach().float().cpu().numpy()
    out = []
    for b in range(batch):
        out.append(
            Prompt(
                points=np.zeros((0, 2)) if coords is None else coords[b],
                labels=np.zeros(0, np.int64) if labels is None else labels[b],
                box=None if box_arr is None else box_arr[b],
                mask=None if mask_arr is None else mask_arr[b, 0, :h, :w],
            )
        )
    return out


def _stack_padded(arrays: list[np.ndarray]) -> np.ndarray:
    """B arrays of C_b x ... (C_b may differ) -> B x max(C_b) x ..., the short ones repeated.

    A prompt with fewer distinct candidates than others repeats its last one, so the batch is
    rectangular; a single prompt keeps exactly its distinct candidates.
    """
    most = max(len(a) for a in arrays)
    out = []
    for a in arrays:
        if len(a) < most:
            a = np.concatenate([a, np.repeat(a[-1:], most - len(a), axis=0)])
        out.append(a)
    return np.stack(out).astype(np.float32)
