"""``SAM2Transforms``: Meta's SAM 2 image, coordinate and mask transforms, on tijeras' paths.

Images are resized by :func:`tijeras.engine.transforms.resize_square` (the resize the predictor
encodes with); masks are cleaned by :mod:`tijeras.models.sam2.holes` (holes and specks of the
low-res logits, on any device) and upscaled bilinearly to the original size. Shapes: B prompts,
C candidates, H x W original pixels, S the model's input side.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..engine.transforms import resize_square
from ..errors import TijerasError
from ..models.sam2.holes import fill_holes_and_sprinkles

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SAM2Transforms:
    """Meta's ``SAM2Transforms``.

    Args:
        resolution: the model's input side S.
        mask_threshold: logit threshold of the masks (holes and specks are found around it).
        max_hole_area: fill background regions of at most this many low-res pixels (0: off).
        max_sprinkle_area: remove foreground specks of at most this many low-res pixels.
    """

    def __init__(
        self,
        resolution: int,
        mask_threshold: float,
        max_hole_area: float = 0.0,
        max_sprinkle_area: float = 0.0,
    ) -> None:
        self.resolution = int(resolution)
        self.mask_threshold = mask_threshold
        self.max_hole_area = max_hole_area
        self.max_sprinkle_area = max_sprinkle_area
        self.mean = list(IMAGENET_MEAN)
        self.std = list(IMAGENET_STD)

    def __call__(self, x: Any) -> torch.Tensor:
        """An H x W x 3 RGB array (0-255) or PIL image -> 3 x S x S normalised float32."""
        array = _rgb_array(x)
        resized = torch.from_numpy(resize_square(array, self.resolution)).permute(2, 0, 1)
        mean = torch.tensor(self.mean).view(3, 1, 1)
        std = torch.tensor(self.std).view(3, 1, 1)
        return (resized / 255.0 - mean) / std

    def forward_batch(self, img_list: list[Any]) -> torch.Tensor:
        """Several images -> B x 3 x S x S."""
        return torch.stack([self(img) for img in img_list], dim=0)

    def transform_coords(
        self,
        coords: torch.Tensor,
        normalize: bool = False,
        orig_hw: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """``... x 2`` xy points -> the S x S input frame. With ``normalize`` they are pixels
        of an image of size ``orig_hw`` (H, W), else already normalised to [0, 1]."""
        if normalize:
            if orig_hw is None:
                raise TijerasError("transform_coords(normalize=True) needs orig_hw=(H, W)")
            h, w = orig_hw
            coords = coords.clone()
            coords[..., 0] = coords[..., 0] / w
            coords[..., 1] = coords[..., 1] / h
        return coords * self.resolution

    def transform_boxes(
        self,
        boxes: torch.Tensor,
        normalize: bool = False,
        orig_hw: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """B x 4 boxes -> B x 2 x 2 corners in the input frame (see :meth:`transform_coords`)."""
        return self.transform_coords(boxes.reshape(-1, 2, 2), normalize, orig_hw)

    def postprocess_masks(self, masks: torch.Tensor, orig_hw: tuple[int, int]) -> torch.Tensor:
        """B x C x 256 x 256 low-res logits -> B x C x H x W logits, holes and specks of the
        low-res logits cleaned first when ``max_hole_area`` / ``max_sprinkle_area`` are set."""
        masks = masks.float()
        if self.max_hole_area > 0 or self.max_sprinkle_area > 0:
            masks = fill_holes_and_sprinkles(
                masks, self.mask_threshold, self.max_hole_area, self.max_sprinkle_area
            )
        size = (int(orig_hw[0]), int(orig_hw[1]))
        return F.interpolate(masks, size, mode="bilinear", align_corners=False)


def _rgb_array(image: Any) -> np.ndarray:
    """An H x W x 3 uint8 RGB array (writable) from an array or a PIL image."""
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise TijerasError(f"image must be H x W x 3 RGB, got shape {image.shape}")
        return image if image.flags.writeable else image.copy()
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        Image = None  # type: ignore[assignment]
    if Image is not None and isinstance(image, Image.Image):
        return np.array(image.convert("RGB"))
    raise TypeError(f"image must be a numpy array or a PIL image, got {type(image).__name__}")
