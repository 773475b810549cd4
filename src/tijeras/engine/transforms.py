"""Image and coordinate transforms between the original image and the model's input frame.

The input frame is the image resized so its longest side is ``long_side`` (1024), before padding.
Resizing uses Pillow's bilinear filter (antialiased when shrinking), as SAM was trained with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

if TYPE_CHECKING:
    from ..contract import InputSpec


def input_size(h: int, w: int, long_side: int) -> tuple[int, int]:
    """(h, w) of an h x w image resized so that its longest side is ``long_side``."""
    scale = long_side * 1.0 / max(h, w)
    return int(h * scale + 0.5), int(w * scale + 0.5)


def resize_image(image: np.ndarray, long_side: int) -> np.ndarray:
    """H x W x 3 uint8 -> h x w x 3 uint8 with the longest side ``long_side``."""
    h, w = input_size(image.shape[0], image.shape[1], long_side)
    return np.array(Image.fromarray(image).resize((w, h), Image.Resampling.BILINEAR))


def resize_for(spec: InputSpec, image: np.ndarray) -> np.ndarray:
    """Resize an H x W x 3 uint8 image the way a model's :class:`InputSpec` asks.

    ``"longest_side"`` (SAM, MobileSAM: the longest side to ``image_size``, the rest padded
    later by the model's ``preprocess``) or ``"square"`` (SAM 2: the whole image to
    ``image_size`` squared, as float values).
    """
    if spec.resize == "longest_side":
        return resize_image(image, spec.image_size)
    if spec.resize == "square":
        return resize_square(image, spec.image_size)
    raise ValueError(f"unknown input resize rule {spec.resize!r}")


def resized_size(spec: InputSpec, h: int, w: int) -> tuple[int, int]:
    """(h, w) of an h x w image after :func:`resize_for`."""
    if spec.resize == "square":
        return spec.image_size, spec.image_size
    return input_size(h, w, spec.image_size)


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """H x W x 3 uint8 -> size x size x 3 float32 (0-255), aspect ratio not kept (SAM 2).

    Bilinear, antialiased when shrinking (torch's interpolation, as SAM 2 was trained with),
    on float values: the result is not rounded back to 8 bits.
    """
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
    x = torch.nn.functional.interpolate(
        x, (size, size), mode="bilinear", align_corners=False, antialias=True
    )
    return x[0].permute(1, 2, 0).contiguous().numpy()


def image_to_tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """h x w x 3 uint8 -> 1 x 3 x h x w uint8 tensor on ``device``."""
    return (
        torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1).contiguous()[None]
    )


def scale_coords(
    coords: torch.Tensor, original_size: tuple[int, int], resized: tuple[int, int]
) -> torch.Tensor:
    """Points (... x 2, xy) from original pixels to the input frame (a new float32 tensor).

    The scaling is done in float64, then rounded once to float32.
    """
    oh, ow = original_size
    nh, nw = resized
    scale = torch.tensor([nw / ow, nh / oh], dtype=torch.float64, device=coords.device)
    return (coords.to(torch.float64) * scale).to(torch.float32)


def scale_boxes(
    boxes: torch.Tensor, original_size: tuple[int, int], resized: tuple[int, int]
) -> torch.Tensor:
    """Boxes (B x 4, x0 y0 x1 y1) from original pixels to the input frame."""
    return scale_coords(boxes.reshape(-1, 2, 2), original_size, resized).reshape(-1, 4)


def scale_coords_np(
    coords: np.ndarray, original_size: tuple[int, int], resized: tuple[int, int]
) -> np.ndarray:
    """NumPy twin of :func:`scale_coords` for callers that hold arrays."""
    return scale_coords(torch.from_numpy(np.asarray(coords)), original_size, resized).numpy()
