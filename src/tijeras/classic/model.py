"""``ClassicModel``: the weightless backend behind the predictor interface of the SAM models.

The "image embedding" is the resized image itself, zero-padded to ``image_size`` squared
(1 x 3 x S x S, values 0..255), so it is stored, cached and saved like SAM's. Prompts are
segmented by :mod:`tijeras.classic.grabcut` at that resolution; the low-res logits are S x S
signed distance maps (positive inside), which a later prompt can take back as ``mask_input``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import ClassicConfig
from .grabcut import Prompt, segment, to_logits


class ClassicModel(nn.Module):
    """GrabCut prompts and Felzenszwalb everything mode, with no parameters.

    Args:
        config: the backend's parameters (see :class:`ClassicConfig`).
    """

    image_format = "RGB"
    input_resize = "longest_side"  # how engine.transforms.resize_for fits an image

    def __init__(self, config: ClassicConfig) -> None:
        super().__init__()
        self.config = config
        self.mask_threshold = config.mask_threshold
        # Carries the device and dtype given to .to(); not part of the state_dict.
        self.register_buffer("anchor", torch.zeros(1), persistent=False)

    # ------------------------------------------------ the interface the predictor uses
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

    @property
    def embedding_grid(self) -> tuple[int, int]:
        """(h, w) of the "embedding": the padded working image."""
        return self.config.image_size, self.config.image_size

    @property
    def mask_input_size(self) -> tuple[int, int]:
        """(h, w) of the low-res logits and of a mask prompt: the padded working image."""
        return self.config.image_size, self.config.image_size

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """B x 3 x h x w resized image (0-255) -> B x 3 x S x S, zero-padded, model dtype."""
        size = self.config.image_size
        h, w = x.shape[-2:]
        return F.pad(x.to(self.dtype), (0, size - w, 0, size - h))

    def encode_image(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The "embedding" of a 1 x 3 x S x S input is the input itself."""
        return x, {}

    @torch.inference_mode()
    def decode_prompts(
        self,
        embedding: Any,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        masks: torch.Tensor | None,
        multimask_output: bool,
        image_only: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Low-res logits (B x C x S x S) and scores (B x C) for input-frame prompts.

        C is 3 with ``multimask_output``, else 1 (the best-scoring candidate). Prompts of a
        batch are segmented one after another. ``image_only`` changes nothing here.
        """
        image = self._working_image(embedding)
        h, w = image.shape[:2]
        regions = self._regions(embedding)
        prompts = _split_prompts(points, boxes, masks, h, w)
        size, clip = self.config.image_size, self.config.logit_clip
        all_logits, all_scores = [], []
        for prompt in prompts:
            candidates, scores = segment(image, prompt, self.config, regions)
            if not multimask_output:
                best = int(np.argmax(scores))
                candidates, scores = candidates[best : best + 1], scores[best : best + 1]
            all_logits.append(np.stack([to_logits(m, size, clip) for m in candidates]))
            all_scores.append(scores)
        logits = torch.from_numpy(np.stack(all_logits)).to(self.device, self.dtype)
        return logits, torch.from_numpy(np.stack(all_scores)).to(self.device, self.dtype)

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

    def mask_generator(self, **options: Any) -> Any:
        """The everything-mode generator (Felzenszwalb regions); takes SAM's keywords."""
        from .everything import ClassicMaskGenerator

        return ClassicMaskGenerator(self, **options)

    # ------------------------------------------------ internals
    def _working_image(self, embedding: Any) -> np.ndarray:
        """The h x w x 3 uint8 working image, kept in the embedding's ``decoder_state``."""
        state = embedding.decoder_state
        if isinstance(state, dict) and "image" in state:
            return state["image"]
        h, w = embedding.input_size
        pixels = embedding.features[0, :, :h, :w].float().round().clamp(0, 255)
        image = np.ascontiguousarray(pixels.to(torch.uint8).permute(1, 2, 0).cpu().numpy())
        embedding.decoder_state = {"image": image}
        return image

    def _regions(self, embedding: Any) -> Callable[[], np.ndarray]:
        """A function returning the image's Felzenszwalb regions, computed once per image."""

        def regions() -> np.ndarray:
            state = embedding.decoder_state
            if "regions" not in state:
                from .regions import over_segment

                state["regions"] = over_segment(state["image"], 32, self.config)
            return state["regions"]

        return regions


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
