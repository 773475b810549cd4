"""Object datasets for evaluation and training: a mask folder or a COCO instances file.

Folder layout (one object per image)::

    DATA/images/<name>.jpg|png     the image
    DATA/masks/<name>.png          its object: 0 background, 255 foreground (above 127 counts)
    DATA/ignore/<name>.png         optional: non-zero pixels are left out of IoU and losses

COCO layout: an instances JSON (``images``, ``annotations`` with polygon or RLE
``segmentation``) and a folder holding the images named by ``file_name``; every annotation that
is not a crowd region and covers at least ``min_area`` pixels is one object.

Every problem (a missing folder, an image without a mask, a mask of another size, an empty
mask) raises :class:`~tijeras.errors.DatasetError` naming the file.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DatasetError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class ObjectSample:
    """One object to segment: its image file and where its mask comes from.

    Attributes:
        name: a unique label (the file stem, or ``stem#annotation_id`` for COCO).
        image_path: the image file.
        mask_path: a 0/255 mask PNG (folder layout), else None.
        ignore_path: an optional PNG whose non-zero pixels are ignored.
        coco: the COCO annotation (with ``height``/``width`` added), else None.
    """

    name: str
    image_path: Path
    mask_path: Path | None = None
    ignore_path: Path | None = None
    coco: dict[str, Any] | None = field(default=None, compare=False, hash=False)

    def load_mask(self, size: tuple[int, int] | None = None) -> np.ndarray:
        """The H x W bool object mask; ``size`` (H, W) is checked when given."""
        if self.coco is not None:
            mask = coco_annotation_mask(self.coco)
            where = f"annotation {self.coco.get('id')} of {self.image_path.name}"
        else:
            assert self.mask_path is not None
            mask = read_binary_png(self.mask_path)
            where = str(self.mask_path)
        if size is not None and mask.shape != tuple(size):
            raise DatasetError(
                f"{where}: mask is {mask.shape[1]}x{mask.shape[0]} (WxH) but the image "
                f"{self.image_path} is {size[1]}x{size[0]}"
            )
        return mask

    def load_ignore(self, size: tuple[int, int]) -> np.ndarray | None:
        """The H x W bool ignore mask, or None."""
        if self.ignore_path is None:
            return None
        ignore = read_binary_png(self.ignore_path, threshold=0)
        if ignore.shape != tuple(size):
            raise DatasetError(
                f"{self.ignore_path}: ignore mask is {ignore.shape[1]}x{ignore.shape[0]} (WxH) "
                f"but the image {self.image_path} is {size[1]}x{size[0]}"
            )
        return ignore

    def load(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Image (H x W x 3 uint8), mask (H x W bool) and ignore mask (H x W bool or None).

        Raises:
            DatasetError: the mask or ignore mask does not fit the image, or no pixel of the
                object is left once the ignored pixels are removed.
        """
        from ..io.image import load_image

        image = load_image(self.image_path)
        size = (image.shape[0], image.shape[1])
        mask = self.load_mask(size)
        ignore = self.load_ignore(size)
        check_not_empty(self, mask, ignore)
        return image, mask, ignore


def check_not_empty(sample: ObjectSample, mask: np.ndarray, ignore: np.ndarray | None) -> None:
    """Raise DatasetError if the object has no (non-ignored) foreground pixel."""
    left = mask if ignore is None else mask & ~ignore
    if not left.any():
        where = sample.mask_path if sample.coco is None else f"{sample.name} (COCO)"
        reason = "empty" if not mask.any() else "entirely covered by its ignore mask"
        raise DatasetError(f"{where}: the object mask is {reason}")


def read_binary_png(path: Path, threshold: int = 127) -> np.ndarray:
    """A mask image as H x W bool: pixels whose (grey) value exceeds ``threshold``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.mode in ("I;16", "I;16B", "I;16L", "I"):
                array = np.asarray(image, dtype=np.int64) > threshold * 257
            else:
                array = np.asarray(image.convert("L")) > threshold
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read mask image: {exc}") from None
    return np.ascontiguousarray(array)


def coco_annotation_mask(annotation: dict[str, Any]) -> np.ndarray:
    """Decode a COCO annotation's polygons or RLE to an H x W bool mask (pycocotools)."""
    from pycocotools import mask as mask_utils

    h, w = int(annotation["height"]), int(annotation["width"])
    seg = annotation["segmentation"]
    if isinstance(seg, list):
        rles = mask_utils.frPyObjects(seg, h, w)
        rle = mask_utils.merge(rles)
    elif isinstance(seg, dict) and isinstance(seg.get("counts"), list):
        rle = mask_utils.frPyObjects(seg, h, w)
    elif isinstance(seg, dict):
        rle = dict(seg)
        if isinstance(rle["counts"], str):
            rle["counts"] = rle["counts"].encode("ascii")
    else:
        raise DatasetError(f"annotation {annotation.get('id')}: unknown segmentation format")
    return mask_utils.decode(rle).astype(bool)


# ----------------------------------------------------------------------------- folders


def _stems(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            if path.stem in found:
                raise DatasetError(f"{folder}: two images named {path.stem!r} ({path.name})")
            found[path.stem] = path
    return found


def is_mask_folder(path: Path) -> bool:
    """True when ``path`` has the ``images/`` + ``masks/`` layout."""
    return (path / "images").is_dir() and (path / "masks").is_dir()


def load_mask_folder(root: str | Path) -> list[ObjectSample]:
    """Every ``images/<name>`` with its ``masks/<name>.png`` (and ``ignore/<name>.png``).

    Raises:
        DatasetError: the folder or its ``images``/``masks`` subfolder is missing, it has no
            image, or an image has no mask.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    for sub in ("images", "masks"):
        if not (root / sub).is_dir():
            raise DatasetError(
                f"{root}: no {sub}/ folder (expected images/<name>.jpg and masks/<name>.png)"
            )
    images = _stems(root / "images")
    if not images:
        raise DatasetError(f"{root / 'images'}: no images ({', '.join(IMAGE_SUFFIXES)})")
    ignore_dir = root / "ignore"
    samples = []
    for stem, image_path in images.items():
        mask_path = root / "masks" / f"{stem}.png"
        if not mask_path.is_file():
            raise DatasetError(f"{image_path}: no mask {mask_path}")
        ignore_path = ignore_dir / f"{stem}.png"
        samples.append(
            ObjectSample(
                name=stem,
                image_path=image_path,
                mask_path=mask_path,
                ignore_path=ignore_path if ignore_path.is_file() else None,
            )
        )
    return samples


def check_samples(samples: Sequence[ObjectSample]) -> None:
    """Read every mask header and mask (not the images' pixels) and fail on the first problem.

    Raises:
        DatasetError: a mask that does not fit its image, or an empty object.
    """
    from ..io.image import read_image_size

    for sample in samples:
        size = read_image_size(sample.image_path)
        mask = sample.load_mask(size)
        check_not_empty(sample, mask, sample.load_ignore(size))


# ----------------------------------------------------------------------------- COCO


def load_coco(
    annotations: str | Path, images: str | Path | None = None, *, min_area: float = 100.0
) -> list[ObjectSample]:
    """The objects of a COCO instances file (crowd regions and tiny objects skipped).

    Args:
        annotations: the instances JSON.
        images: the folder of the images (default: ``images/`` beside the JSON if present,
            else the JSON's folder).
        min_area: objects smaller than this (pixels, the annotation's ``area``) are skipped.
    """
    path = Path(annotations)
    if not path.is_file():
        raise DatasetError(f"COCO annotation file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: not a readable JSON file: {exc}") from None
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise DatasetError(f"{path}: not a COCO instances file (no 'images'/'annotations')")
    folder = Path(images) if images is not None else _default_coco_images(path)
    records = {img["id"]: img for img in data["images"]}
    samples = []
    for ann in data["annotations"]:
        if ann.get("iscrowd", 0) or float(ann.get("area", min_area)) < min_area:
            continue
        record = records.get(ann["image_id"])
        if record is None:
            raise DatasetError(f"{path}: annotation {ann.get('id')} names unknown image")
        image_path = folder / record["file_name"]
        if not image_path.is_file():
            raise DatasetError(f"{path}: image {image_path} not found")
        full = dict(ann, height=record["height"], width=record["width"])
        name = f"{Path(record['file_name']).stem}#{ann.get('id')}"
        samples.append(ObjectSample(name=name, image_path=image_path, coco=full))
    if not samples:
        raise DatasetError(f"{path}: no usable annotation (area >= {min_area}, not crowd)")
    return samples


def _default_coco_images(path: Path) -> Path:
    beside = path.parent / "images"
    return beside if beside.is_dir() else path.parent


def open_dataset(
    data: str | Path, images: str | Path | None = None, *, check: bool = True
) -> list[ObjectSample]:
    """A mask folder or a COCO JSON file, as a list of objects (checked when ``check``)."""
    data = Path(data)
    if data.suffix.lower() == ".json":
        samples = load_coco(data, images)
    else:
        samples = load_mask_folder(data)
    if check:
        check_samples(samples)
    return samples


def split_samples(
    samples: Sequence[ObjectSample], val_fraction: float, seed: int = 0
) -> tuple[list[ObjectSample], list[ObjectSample]]:
    """A reproducible train/validation split by image (objects of one image stay together)."""
    if not 0.0 < val_fraction < 1.0:
        raise DatasetError(f"validation fraction must be between 0 and 1, got {val_fraction}")
    paths = sorted({s.image_path for s in samples})
    if len(paths) < 2:
        raise DatasetError("a train/validation split needs at least two images")
    random.Random(seed).shuffle(paths)
    n_val = min(len(paths) - 1, max(1, round(len(paths) * val_fraction)))
    val_paths = set(paths[:n_val])
    train = [s for s in samples if s.image_path not in val_paths]
    val = [s for s in samples if s.image_path in val_paths]
    return train, val
