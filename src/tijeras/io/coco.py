"""COCO-format JSON from SAM "everything" records: one dataset per image, merged, written.

A record is a dict as produced by automatic mask generation: ``segmentation`` (an H x W
bool array, an uncompressed RLE ``{"size", "counts": [int, ...]}`` or a compressed COCO
RLE ``{"size", "counts": str}``), ``area``, ``bbox`` (XYWH), ``predicted_iou``,
``stability_score`` and optionally ``point_coords`` and ``crop_box``. Only ``segmentation``
is required: a missing ``area`` or ``bbox`` is computed from the mask. Needs pycocotools.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tijeras import __version__
from tijeras.errors import TijerasError
from tijeras.io.polygon import mask_to_polygons, polygons_to_coco
from tijeras.io.rle import (
    _is_tensor,
    _pycocotools_mask,
    _with_str_counts,
    coco_rle_one,
    decode_coco_rle,
    uncompressed_to_coco_rle,
)

__all__ = ["coco_dataset", "merge_coco", "segmentation_to_mask", "write_coco"]

SEGMENTATION_MODES = ("rle", "polygon")
"""Values of ``coco_dataset(segmentation=...)``."""

_PASSTHROUGH = ("stability_score", "point_coords", "crop_box")


def coco_dataset(
    records: Sequence[Mapping[str, Any]],
    image_id: int,
    file_name: str,
    height: int,
    width: int,
    category_name: str = "object",
    segmentation: str = "rle",
    tolerance: float = 1.0,
) -> dict[str, Any]:
    """Build a COCO dataset dict for one image and its SAM records.

    Every record becomes an annotation of the single category (id 1) with a 1-based id,
    ``iscrowd`` 0, ``area`` and ``bbox`` as floats, ``score`` (the record's
    ``predicted_iou``), and ``stability_score``, ``point_coords`` and ``crop_box`` passed
    through when present. With ``segmentation="rle"`` the mask is stored as a compressed
    COCO RLE (lossless). With ``segmentation="polygon"`` it is stored as polygons traced by
    :func:`tijeras.io.polygon.mask_to_polygons` (approximate: vertices on border pixel
    centres, parts below 3 vertices dropped), falling back to an RLE for a mask with holes,
    which COCO polygons cannot express, or with no valid polygon.

    Args:
        records: SAM records, see the module docstring.
        image_id: COCO id of the image.
        file_name: Image file name stored in ``images``.
        height: Image height H; every mask must be H x W.
        width: Image width W.
        category_name: Name of the single category.
        segmentation: ``"rle"`` or ``"polygon"``.
        tolerance: Polygon simplification tolerance in pixels (polygon mode only).

    Returns:
        ``{"info", "licenses", "images", "annotations", "categories"}``, JSON-serialisable.

    Raises:
        TijerasError: If a record lacks ``segmentation``, a mask is not H x W, or an
            argument is invalid.
    """
    if segmentation not in SEGMENTATION_MODES:
        raise TijerasError(
            f"segmentation must be one of {SEGMENTATION_MODES}, got {segmentation!r}"
        )
    _check_size(height, width)
    annotations = [
        _annotation(record, index, int(image_id), (height, width), segmentation, tolerance)
        for index, record in enumerate(records)
    ]
    image = {"id": int(image_id), "file_name": str(file_name), "height": height, "width": width}
    return {
        "info": {"description": "Segment Anything masks made by tijeras", "version": __version__},
        "licenses": [],
        "images": [image],
        "annotations": annotations,
        "categories": [{"id": 1, "name": category_name, "supercategory": category_name}],
    }


def merge_coco(datasets: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Combine COCO dataset dicts (for example one per image) into one.

    Image ids are kept when they are unique across all datasets and renumbered 1..N in
    order otherwise. Annotation ids are always renumbered 1..M. Categories with the same
    name are merged and numbered 1..C in order of first appearance. ``info`` is taken from
    the first dataset.

    Args:
        datasets: Dicts with ``images``, ``annotations`` and ``categories`` lists.

    Returns:
        One COCO dataset dict.

    Raises:
        TijerasError: If a dataset lacks one of those keys.
    """
    for index, dataset in enumerate(datasets):
        for key in ("images", "annotations", "categories"):
            if not isinstance(dataset, Mapping) or key not in dataset:
                raise TijerasError(f"COCO dataset {index} has no {key!r} list")
    image_ids = _merged_image_ids(datasets)
    category_ids, categories = _merged_categories(datasets)
    images, annotations = [], []
    for index, dataset in enumerate(datasets):
        for image in dataset["images"]:
            images.append({**image, "id": image_ids[index, image["id"]]})
        for annotation in dataset["annotations"]:
            annotations.append(
                {
                    **annotation,
                    "id": len(annotations) + 1,
                    "image_id": image_ids[index, annotation["image_id"]],
                    "category_id": category_ids[index, annotation["category_id"]],
                }
            )
    info = datasets[0].get("info", {}) if datasets else {}
    licenses = [lic for dataset in datasets for lic in dataset.get("licenses", [])]
    return {
        "info": info,
        "licenses": licenses,
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }


def write_coco(dataset: Mapping[str, Any], path: str | Path) -> None:
    """Write a COCO dataset dict as JSON, creating the parent folders.

    Args:
        dataset: The dict, as from :func:`coco_dataset` or :func:`merge_coco`; numpy
            scalars and arrays are converted.
        path: Output ``.json`` file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as stream:
        json.dump(dataset, stream, default=_json_default)


def segmentation_to_mask(segmentation: Any, height: int, width: int) -> np.ndarray:
    """Decode a record's ``segmentation`` (array, uncompressed or compressed RLE) to a mask.

    Args:
        segmentation: H x W array or tensor (non-zero is foreground), or an RLE dict.
        height: Expected height H.
        width: Expected width W.

    Returns:
        H x W bool array.

    Raises:
        TijerasError: If the mask is not H x W or the RLE is malformed.
    """
    if isinstance(segmentation, Mapping):
        mask = decode_coco_rle(segmentation)
    elif _is_tensor(segmentation):
        mask = segmentation.detach().cpu().numpy() != 0
    else:
        mask = np.asarray(segmentation) != 0
    _check_mask_size(mask.shape, height, width)
    return mask


# --- annotations ---------------------------------------------------------------------------


def _annotation(
    record: Mapping[str, Any],
    index: int,
    image_id: int,
    size: tuple[int, int],
    mode: str,
    tolerance: float,
) -> dict[str, Any]:
    """The COCO annotation of record ``index`` (its id is ``index + 1``)."""
    if not isinstance(record, Mapping) or "segmentation" not in record:
        raise TijerasError(f"record {index} has no 'segmentation' key")
    rle = _compressed_rle(record["segmentation"], *size)
    annotation: dict[str, Any] = {
        "id": index + 1,
        "image_id": image_id,
        "category_id": 1,
        "segmentation": rle,
        "area": _float(record["area"]) if "area" in record else _rle_area(rle),
        "bbox": _bbox(record["bbox"], index) if "bbox" in record else _rle_bbox(rle),
        "iscrowd": 0,
    }
    if mode == "polygon":
        annotation["segmentation"] = _polygons_or_rle(record["segmentation"], rle, size, tolerance)
    if "predicted_iou" in record:
        annotation["score"] = _float(record["predicted_iou"])
    for key in _PASSTHROUGH:
        if key in record:
            annotation[key] = _plain(record[key])
    return annotation


def _compressed_rle(segmentation: Any, height: int, width: int) -> dict[str, Any]:
    """Any supported segmentation as a compressed COCO RLE with ``str`` counts."""
    if not isinstance(segmentation, Mapping):
        return coco_rle_one(segmentation_to_mask(segmentation, height, width))
    counts = segmentation.get("counts")
    _check_mask_size(tuple(segmentation.get("size", ())), height, width)
    if isinstance(counts, (str, bytes)):
        return _with_str_counts(segmentation)
    return uncompressed_to_coco_rle([segmentation])[0]


def _polygons_or_rle(
    segmentation: Any, rle: dict[str, Any], size: tuple[int, int], tolerance: float
) -> list[list[float]] | dict[str, Any]:
    """COCO polygons of a mask, or its RLE when it has holes or no valid polygon."""
    polygons = mask_to_polygons(segmentation_to_mask(segmentation, *size), tolerance)
    if not polygons or any(polygon.holes for polygon in polygons):
        return rle
    return polygons_to_coco(polygons)


def _rle_area(rle: dict[str, Any]) -> float:
    return float(_pycocotools_mask().area(_bytes_rle(rle)))


def _rle_bbox(rle: dict[str, Any]) -> list[float]:
    return [float(value) for value in _pycocotools_mask().toBbox(_bytes_rle(rle))]


def _bytes_rle(rle: dict[str, Any]) -> dict[str, Any]:
    return {"size": rle["size"], "counts": rle["counts"].encode("ascii")}


def _bbox(value: Any, index: int) -> list[float]:
    box = np.asarray(value, dtype=np.float64).reshape(-1)
    if box.size != 4:
        raise TijerasError(f"record {index} 'bbox' must be 4 numbers XYWH, got {value!r}")
    return [float(v) for v in box]


# --- merging -------------------------------------------------------------------------------


def _merged_image_ids(datasets: Sequence[Mapping[str, Any]]) -> dict[tuple[int, Any], int]:
    """Map (dataset index, old image id) to the merged image id."""
    keys = [(index, image["id"]) for index, d in enumerate(datasets) for image in d["images"]]
    old_ids = [old for _, old in keys]
    if len(set(old_ids)) == len(old_ids):
        return {key: key[1] for key in keys}
    return {key: new for new, key in enumerate(keys, start=1)}


def _merged_categories(
    datasets: Sequence[Mapping[str, Any]],
) -> tuple[dict[tuple[int, Any], int], list[dict[str, Any]]]:
    """Map (dataset index, old category id) to merged ids, and the merged category list."""
    by_name: dict[str, dict[str, Any]] = {}
    mapping = {}
    for index, dataset in enumerate(datasets):
        for category in dataset["categories"]:
            name = category.get("name")
            if name not in by_name:
                by_name[name] = {**category, "id": len(by_name) + 1}
            mapping[index, category["id"]] = by_name[name]["id"]
    return mapping, list(by_name.values())


# --- validation and JSON -------------------------------------------------------------------


def _check_size(height: Any, width: Any) -> None:
    if not all(isinstance(v, (int, np.integer)) and v > 0 for v in (height, width)):
        raise TijerasError(f"image height and width must be positive ints, got {height}, {width}")


def _check_mask_size(shape: tuple[int, ...], height: int, width: int) -> None:
    if tuple(int(v) for v in shape) != (height, width):
        raise TijerasError(
            f"segmentation must be {height} x {width} (the image size), got shape {tuple(shape)}"
        )


def _float(value: Any) -> float:
    return float(np.asarray(value).reshape(()))


def _plain(value: Any) -> Any:
    """A JSON-friendly copy: arrays and tensors become (nested) lists of Python numbers."""
    if _is_tensor(value):
        value = value.detach().cpu().numpy()
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _json_default(value: Any) -> Any:
    plain = _plain(value)
    if plain is value:
        raise TypeError(f"object of type {type(value).__name__} is not JSON serializable")
    return plain
