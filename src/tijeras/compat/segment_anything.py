"""The public API of Meta's ``segment_anything`` package, backed by tijeras.

Code written for that package runs by changing its import to ``from tijeras import ...``:
``sam_model_registry``, ``SamPredictor`` and ``ResizeLongestSide`` keep its names, arguments,
defaults, return types, shapes and dtypes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..engine import transforms
from ..engine.predictor import Predictor
from ..model.registry import build_model
from ..model.sam import Sam


class ResizeLongestSide:
    """Resizes images and maps coordinates so the longest side is ``target_length``."""

    def __init__(self, target_length: int) -> None:
        self.target_length = target_length

    @staticmethod
    def get_preprocess_shape(oldh: int, oldw: int, long_side_length: int) -> tuple[int, int]:
        return transforms.input_size(oldh, oldw, long_side_length)

    def apply_image(self, image: np.ndarray) -> np.ndarray:
        """H x W x 3 uint8 -> resized uint8 array."""
        return transforms.resize_image(image, self.target_length)

    def apply_coords(self, coords: np.ndarray, original_size: tuple[int, ...]) -> np.ndarray:
        """... x 2 points in original pixels -> float64 points in the resized frame."""
        h, w = original_size
        nh, nw = self.get_preprocess_shape(h, w, self.target_length)
        coords = np.array(coords, dtype=float)
        coords[..., 0] = coords[..., 0] * (nw / w)
        coords[..., 1] = coords[..., 1] * (nh / h)
        return coords

    def apply_boxes(self, boxes: np.ndarray, original_size: tuple[int, ...]) -> np.ndarray:
        """B x 4 boxes -> B x 4 boxes in the resized frame."""
        return self.apply_coords(np.asarray(boxes).reshape(-1, 2, 2), original_size).reshape(-1, 4)

    def apply_image_torch(self, image: torch.Tensor) -> torch.Tensor:
        """B x 3 x H x W float images -> resized, antialiased bilinear."""
        h, w = image.shape[-2:]
        size = self.get_preprocess_shape(h, w, self.target_length)
        return F.interpolate(image, size, mode="bilinear", align_corners=False, antialias=True)

    def apply_coords_torch(
        self, coords: torch.Tensor, original_size: tuple[int, ...]
    ) -> torch.Tensor:
        h, w = original_size
        nh, nw = self.get_preprocess_shape(h, w, self.target_length)
        coords = coords.clone().to(torch.float)
        coords[..., 0] = coords[..., 0] * (nw / w)
        coords[..., 1] = coords[..., 1] * (nh / h)
        return coords

    def apply_boxes_torch(
        self, boxes: torch.Tensor, original_size: tuple[int, ...]
    ) -> torch.Tensor:
        return self.apply_coords_torch(boxes.reshape(-1, 2, 2), original_size).reshape(-1, 4)


class SamPredictor:
    """Meta's ``SamPredictor`` API: ``set_image`` once, then ``predict`` many prompts.

    Embeddings are cached by image content, so setting an image seen recently is free.
    """

    def __init__(self, sam_model: Sam) -> None:
        self.model = sam_model
        self.transform = ResizeLongestSide(sam_model.image_encoder.img_size)
        self._engine = Predictor(sam_model)
        self.reset_image()

    # Meta's attributes, read from the current embedding.
    @property
    def features(self) -> torch.Tensor | None:
        emb = self._engine.embedding
        return None if emb is None else emb.features

    @property
    def original_size(self) -> tuple[int, int] | None:
        emb = self._engine.embedding
        return None if emb is None else emb.original_size

    @property
    def input_size(self) -> tuple[int, int] | None:
        emb = self._engine.embedding
        return None if emb is None else emb.input_size

    @property
    def is_image_set(self) -> bool:
        return self._engine.is_image_set

    @property
    def device(self) -> torch.device:
        return self.model.device

    def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
        """Encode an H x W x 3 uint8 image in ``image_format`` ('RGB' or 'BGR')."""
        self._engine.set_image(image, image_format=image_format)

    def set_torch_image(
        self, transformed_image: torch.Tensor, original_image_size: tuple[int, ...]
    ) -> None:
        """Encode a 1 x 3 x h x w image already resized with :attr:`transform`."""
        h, w = original_image_size
        self._engine.embedding = self._engine.encode(transformed_image, (int(h), int(w)))

    def predict(
        self,
        point_coords: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Masks (C x H x W), scores (C) and low-res logits (C x 256 x 256) for one prompt."""
        if not self.is_image_set:
            raise RuntimeError("An image must be set with .set_image(...) before mask prediction.")
        coords = labels = boxes = masks = None
        if point_coords is not None:
            if point_labels is None:
                raise ValueError("point_labels must be supplied if point_coords is supplied.")
            pts = self.transform.apply_coords(point_coords, self.original_size)
            coords = torch.as_tensor(pts, dtype=torch.float, device=self.device)[None]
            labels = torch.as_tensor(point_labels, dtype=torch.int, device=self.device)[None]
        if box is not None:
            b = self.transform.apply_boxes(box, self.original_size)
            boxes = torch.as_tensor(b, dtype=torch.float, device=self.device)[None].reshape(-1, 4)
        if mask_input is not None:
            masks = torch.as_tensor(mask_input, dtype=torch.float, device=self.device)[None]
        out, iou, low_res = self.predict_torch(
            coords, labels, boxes, masks, multimask_output, return_logits=return_logits
        )
        return (
            out[0].detach().cpu().numpy(),
            iou[0].detach().float().cpu().numpy(),
            low_res[0].detach().float().cpu().numpy(),
        )

    def predict_torch(
        self,
        point_coords: torch.Tensor | None,
        point_labels: torch.Tensor | None,
        boxes: torch.Tensor | None = None,
        mask_input: torch.Tensor | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Batched prediction with prompts in the resized frame (see :attr:`transform`).

        Shapes: point_coords B x N x 2, point_labels B x N, boxes B x 4, mask_input
        B x 1 x 256 x 256; returns masks B x C x H x W, IoU B x C, low-res B x C x 256 x 256.
        """
        if not self.is_image_set:
            raise RuntimeError("An image must be set with .set_image(...) before mask prediction.")
        return self._engine.predict_torch(
            point_coords, point_labels, boxes, mask_input, multimask_output, return_logits
        )

    def get_image_embedding(self) -> torch.Tensor:
        """The current image's 1 x C x 64 x 64 embedding."""
        if not self.is_image_set:
            raise RuntimeError(
                "An image must be set with .set_image(...) to generate an embedding."
            )
        return self.features

    def reset_image(self) -> None:
        """Forget the current image."""
        self._engine.reset_image()


class _Registry(Mapping[str, Callable[..., Sam]]):
    """``sam_model_registry[name](checkpoint=None)`` -> a SAM model in eval mode on the CPU.

    The keys are those of Meta's package plus ``vit_t`` (MobileSAM, as its package names it).
    """

    _NAMES = ("default", "vit_h", "vit_l", "vit_b", "vit_t")

    def __getitem__(self, key: str) -> Callable[..., Sam]:
        from ..model.registry import get_spec

        spec = get_spec(key)

        def build(checkpoint: str | Path | None = None) -> Sam:
            model = build_model(spec.name, checkpoint)
            model.name = spec.name
            return model

        return build

    def __iter__(self) -> Iterator[str]:
        return iter(self._NAMES)

    def __len__(self) -> int:
        return len(self._NAMES)


sam_model_registry = _Registry()
