"""``ResizeLongestSide``: Meta's image and coordinate transform, on tijeras' one resize path.

NumPy images go through :func:`tijeras.engine.transforms.resize_image` (Pillow's bilinear
filter, what SAM was trained with), so a resized image is the one the predictor encodes.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from tijeras.engine import transforms


class ResizeLongestSide:
    """Resizes images and maps coordinates so that the longest side is ``target_length``."""

    def __init__(self, target_length: int) -> None:
        self.target_length = target_length

    @staticmethod
    def get_preprocess_shape(oldh: int, oldw: int, long_side_length: int) -> tuple[int, int]:
        """(h, w) of an ``oldh`` x ``oldw`` image whose longest side becomes ``long_side_length``."""
        return transforms.input_size(oldh, oldw, long_side_length)

    def apply_image(self, image: np.ndarray) -> np.ndarray:
        """H x W x 3 uint8 -> h x w x 3 uint8 with the longest side ``target_length``."""
        return transforms.resize_image(np.ascontiguousarray(image), self.target_length)

    def apply_coords(self, coords: np.ndarray, original_size: tuple[int, ...]) -> np.ndarray:
        """... x 2 xy points in original pixels -> float64 points in the resized frame."""
        h, w = original_size
        nh, nw = self.get_preprocess_shape(h, w, self.target_length)
        coords = np.array(coords, dtype=float)
        coords[..., 0] = coords[..., 0] * (nw / w)
        coords[..., 1] = coords[..., 1] * (nh / h)
        return coords

    def apply_boxes(self, boxes: np.ndarray, original_size: tuple[int, ...]) -> np.ndarray:
        """B x 4 boxes (x0, y0, x1, y1) -> B x 4 boxes in the resized frame."""
        return self.apply_coords(np.asarray(boxes).reshape(-1, 2, 2), original_size).reshape(-1, 4)

    def apply_image_torch(self, image: torch.Tensor) -> torch.Tensor:
        """B x 3 x H x W float images -> resized (bilinear, antialiased).

        The height and width are read from the last two dimensions (Meta's reads the batch
        and channel sizes instead; see ``docs/compat.md``).
        """
        if image.ndim != 4:
            raise ValueError(f"apply_image_torch expects B x C x H x W, got {tuple(image.shape)}")
        h, w = image.shape[-2:]
        size = self.get_preprocess_shape(h, w, self.target_length)
        return F.interpolate(image, size, mode="bilinear", align_corners=False, antialias=True)

    def apply_coords_torch(
        self, coords: torch.Tensor, original_size: tuple[int, ...]
    ) -> torch.Tensor:
        """... x 2 xy points in original pixels -> float32 points in the resized frame."""
        h, w = original_size
        nh, nw = self.get_preprocess_shape(h, w, self.target_length)
        coords = coords.clone().to(torch.float)
        coords[..., 0] = coords[..., 0] * (nw / w)
        coords[..., 1] = coords[..., 1] * (nh / h)
        return coords

    def apply_boxes_torch(
        self, boxes: torch.Tensor, original_size: tuple[int, ...]
    ) -> torch.Tensor:
        """B x 4 boxes in original pixels -> B x 4 float32 boxes in the resized frame."""
        return self.apply_coords_torch(boxes.reshape(-1, 2, 2), original_size).reshape(-1, 4)
