"""YOLO segmentation labels: one ``class x1 y1 x2 y2 ...`` line per object.

Coordinates are normalised by the image width and height to [0, 1] and written with 6
decimals. A YOLO-seg line holds a single polygon without holes, so each object is written
as the exterior ring of its largest part (by area, holes subtracted) from
:func:`tijeras.io.polygon.mask_to_polygons`; holes and smaller separate parts are dropped.
An object with no polygon of at least 3 vertices (an empty mask, a speck, a one-pixel line)
gives no line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tijeras.errors import TijerasError
from tijeras.io.coco import segmentation_to_mask
from tijeras.io.polygon import mask_to_polygons

__all__ = ["write_yolo", "yolo_segmentation_lines"]


def yolo_segmentation_lines(
    records: Sequence[Mapping[str, Any]],
    height: int,
    width: int,
    class_id: int = 0,
    tolerance: float = 1.0,
) -> list[str]:
    """YOLO segmentation label lines for SAM records, one per object that has a polygon.

    Args:
        records: Dicts with a ``segmentation`` key: an H x W mask or a COCO RLE dict.
        height: Image height H.
        width: Image width W.
        class_id: Class index written at the start of every line.
        tolerance: Polygon simplification tolerance in pixels (0 keeps every contour point).

    Returns:
        Lines ``"class x1 y1 x2 y2 ..."`` without newlines, in record order.

    Raises:
        TijerasError: If a record lacks ``segmentation`` or a mask is not H x W.
    """
    if height <= 0 or width <= 0:
        raise TijerasError(f"image height and width must be positive, got {height}, {width}")
    lines = []
    for index, record in enumerate(records):
        if not isinstance(record, Mapping) or "segmentation" not in record:
            raise TijerasError(f"record {index} has no 'segmentation' key")
        mask = segmentation_to_mask(record["segmentation"], height, width)
        ring = _largest_exterior(mask, tolerance)
        if ring is not None:
            lines.append(_format_line(class_id, ring, height, width))
    return lines


def write_yolo(lines: Sequence[str], path: str | Path) -> None:
    """Write label lines to a YOLO ``.txt`` file (empty for no objects), creating folders.

    Args:
        lines: Lines from :func:`yolo_segmentation_lines`.
        path: Output file, conventionally ``labels/<image stem>.txt``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def _largest_exterior(mask: np.ndarray, tolerance: float) -> np.ndarray | None:
    """The K x 2 exterior ring of the mask's largest part, or None if it has none."""
    polygons = mask_to_polygons(mask, tolerance)
    if not polygons:
        return None
    return max(polygons, key=lambda polygon: polygon.area).exterior


def _format_line(class_id: int, ring: np.ndarray, height: int, width: int) -> str:
    """``class x1 y1 ...`` with coordinates divided by the image size and clipped to [0, 1]."""
    normalised = np.clip(ring / np.array([width, height], np.float64), 0.0, 1.0)
    return " ".join([str(int(class_id)), *(f"{value:.6f}" for value in normalised.reshape(-1))])
