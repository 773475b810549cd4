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

# Mask formats: COCO RLEs, polygons, COCO JSON and YOLO segmentation labels.
from tijeras.io.coco import coco_dataset, merge_coco, segmentation_to_mask, write_coco
from tijeras.io.polygon import (
    Polygon,
    mask_to_polygons,
    polygons_to_coco,
    polygons_to_mask,
)
from tijeras.io.rle import (
    coco_rle,
    coco_rle_one,
    decode_coco_rle,
    masks_to_uncompressed_rle,
    rle_area,
    uncompressed_rle_to_mask,
    uncompressed_to_coco_rle,
)
from tijeras.io.yolo import write_yolo, yolo_segmentation_lines

__all__ += [
    "Polygon",
    "coco_dataset",
    "coco_rle",
    "coco_rle_one",
    "decode_coco_rle",
    "mask_to_polygons",
    "masks_to_uncompressed_rle",
    "merge_coco",
    "polygons_to_coco",
    "polygons_to_mask",
    "rle_area",
    "segmentation_to_mask",
    "uncompressed_rle_to_mask",
    "uncompressed_to_coco_rle",
    "write_coco",
    "write_yolo",
    "yolo_segmentation_lines",
]
