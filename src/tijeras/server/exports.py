"""What a mask becomes for the user: PNGs, the photo with the object erased, a sticker, a
brushed copy of the mask, and COCO files of the kept objects.

Everything is made in memory and returned as bytes or dicts; nothing here writes a file.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import cv2
import numpy as np
from PIL import Image

from ..io.export import cutout, erase_object, inpaint_mask, sticker
from ..io.rle import coco_rle_one, decode_coco_rle
from .schemas import Stroke
from .service import mask_entry
from .store import ImageEntry, MaskEntry

IMAGE_FORMATS = {"png": ("PNG", "image/png"), "jpg": ("JPEG", "image/jpeg")}
"""Formats of the erased photo: suffix -> (Pillow format, media type)."""


def mask_array(mask: MaskEntry) -> np.ndarray:
    """The mask at the image's full size, H x W bool."""
    return decode_coco_rle(mask.rle).astype(bool)


def encoded(pixels: np.ndarray, file_format: str = "PNG", **options: Any) -> bytes:
    """An image array encoded in memory (PNG, JPEG or WebP)."""
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=file_format, **options)
    return out.getvalue()


def cutout_png(entry: ImageEntry, mask: MaskEntry) -> bytes:
    return encoded(cutout(entry.pixels, mask_array(mask), crop=True))


def mask_png(mask: MaskEntry) -> bytes:
    return encoded(mask_array(mask).astype(np.uint8) * np.uint8(255))


def inpaint_png(mask: MaskEntry, dilate: int) -> bytes:
    return encoded(inpaint_mask(mask_array(mask), dilate))


def erased(entry: ImageEntry, mask: MaskEntry, dilate: int, suffix: str) -> bytes:
    """The photo with the object filled from its surroundings, as PNG or JPEG bytes."""
    pixels = erase_object(entry.pixels, mask_array(mask), dilate=dilate)
    file_format = IMAGE_FORMATS[suffix][0]
    return encoded(pixels, file_format, **({"quality": 92} if file_format == "JPEG" else {}))


def sticker_webp(entry: ImageEntry, mask: MaskEntry, outline: int, margin: int) -> bytes:
    """The object as a 512 x 512 WebP sticker with transparency."""
    pixels = sticker(entry.pixels, mask_array(mask), margin=margin, outline=outline)
    return encoded(pixels, "WEBP", quality=90, method=4)


def edit(entry: ImageEntry, mask: MaskEntry, strokes: Sequence[Stroke]) -> MaskEntry:
    """A copy of ``mask`` with brush strokes applied in order: ``add`` strokes paint the
    object, ``erase`` strokes clear it (round dabs joined by round-capped lines)."""
    pixels = np.ascontiguousarray(mask_array(mask), dtype=np.uint8)  # OpenCV draws in C order
    for stroke in strokes:
        value = 1 if stroke.mode == "add" else 0
        radius = max(0, round(stroke.radius))
        points = [(round(x), round(y)) for x, y in stroke.points]
        for point in points:
            cv2.circle(pixels, point, radius, value, thickness=-1)
        for start, end in pairwise(points):
            cv2.line(pixels, start, end, value, thickness=2 * radius + 1)
    edited = pixels.astype(bool)
    return mask_entry(edited, coco_rle_one(edited), mask.score, "edited")


def objects_coco(
    entry_name: str,
    height: int,
    width: int,
    objects: Sequence[tuple[str, MaskEntry]],
    segmentation: str = "rle",
    image_id: int = 1,
) -> dict[str, Any]:
    """A COCO dataset of one image's kept objects, one category per distinct name."""
    from ..io.coco import coco_dataset

    records = [
        {"segmentation": m.rle, "area": m.area, "bbox": m.bbox, "predicted_iou": m.score}
        for _, m in objects
    ]
    dataset = coco_dataset(records, image_id, entry_name, height, width, segmentation=segmentation)
    names = list(dict.fromkeys(name for name, _ in objects))
    ids = {name: index + 1 for index, name in enumerate(names)}
    dataset["categories"] = [
        {"id": i, "name": n, "supercategory": "object"} for n, i in ids.items()
    ]
    for annotation, (name, _) in zip(dataset["annotations"], objects):
        annotation["category_id"] = ids[name]
        annotation["name"] = name
    return dataset


def kept(entry: ImageEntry) -> list[tuple[str, MaskEntry]]:
    """The image's kept objects with their masks, in the order they were kept."""
    with entry.lock:
        return [(o.name, entry.masks[o.mask_id]) for o in entry.objects if o.mask_id in entry.masks]


def coco_json(entry: ImageEntry, segmentation: str = "rle") -> dict[str, Any]:
    """COCO dataset of the image's kept objects."""
    return objects_coco(entry.name, entry.height, entry.width, kept(entry), segmentation)
