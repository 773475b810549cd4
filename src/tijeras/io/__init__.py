"""Image input and output: load any image as H x W x 3 uint8 RGB, export masks and cut-outs."""

from __future__ import annotations

from tijeras.io.export import (
    PALETTE,
    cutout,
    inpaint_mask,
    mask_to_box,
    overlay,
    save_image,
    save_mask_png,
)
from tijeras.io.image import WHITE_BACKGROUND, ImageSource, load_image, read_image_size

__all__ = [
    "PALETTE",
    "WHITE_BACKGROUND",
    "ImageSource",
    "cutout",
    "inpaint_mask",
    "load_image",
    "mask_to_box",
    "overlay",
    "read_image_size",
    "save_image",
    "save_mask_png",
]
