"""Typed columns of candidate masks, filtered and concatenated without copying Python lists."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch

from ..errors import TijerasError
from ..io.rle import coco_rle_areas, uncompressed_rle_to_mask

OUTPUT_MODES = ("binary_mask", "uncompressed_rle", "coco_rle")


@dataclass
class MaskRecords:
    """N candidate masks: one row per mask in every column.

    ``rles`` holds compressed COCO RLEs (dicts with str counts); tensor columns are on the CPU.
    """

    rles: list[dict]
    iou: torch.Tensor  # N float
    stability: torch.Tensor  # N float
    points: torch.Tensor  # N x 2 float, xy in image pixels
    boxes: torch.Tensor  # N x 4 int, inclusive xyxy in image pixels
    crop_boxes: torch.Tensor  # N x 4 int, xyxy
    # N x h x w low-res logits of masks not encoded yet (their ``rles`` entries are None)
    low_res: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.rles)

    def filter(self, keep: torch.Tensor) -> MaskRecords:
        """Rows selected by a bool mask or an index tensor, in that order."""
        if keep.dtype == torch.bool:
            keep = torch.nonzero(keep).flatten()
        idx = keep.tolist()
        columns = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "rles" and value is not None:
                columns[f.name] = value[keep]
        return MaskRecords(rles=[self.rles[i] for i in idx], **columns)

    @staticmethod
    def cat(parts: list[MaskRecords]) -> MaskRecords:
        """All rows of ``parts``, concatenated once."""
        if not parts:
            return MaskRecords.empty()
        columns = {}
        for f in fields(MaskRecords):
            values = [getattr(p, f.name) for p in parts]
            if f.name != "rles" and all(v is not None for v in values):
                columns[f.name] = torch.cat(values)
        return MaskRecords(rles=[r for p in parts for r in p.rles], **columns)

    @staticmethod
    def empty() -> MaskRecords:
        return MaskRecords(
            rles=[],
            iou=torch.zeros(0),
            stability=torch.zeros(0),
            points=torch.zeros(0, 2),
            boxes=torch.zeros(0, 4, dtype=torch.int64),
            crop_boxes=torch.zeros(0, 4, dtype=torch.int64),
        )


def records_to_output(
    data: MaskRecords, output_mode: str, *, meta_types: bool = False
) -> list[dict[str, Any]]:
    """Meta's everything-mode records, with ``segmentation`` as ``output_mode`` asks.

    Keys: ``segmentation``, ``area``, ``bbox`` (XYWH), ``predicted_iou``, ``point_coords``,
    ``stability_score``, ``crop_box`` (XYWH). ``bbox`` and ``crop_box`` are ints, or, with
    ``meta_types``, the type of their column: floats where Meta's generators give floats (a
    float column, see :mod:`tijeras.automatic.generator`).
    """
    if output_mode not in OUTPUT_MODES:
        raise ValueError(f"output_mode must be one of {OUTPUT_MODES}, got {output_mode!r}")
    areas = coco_rle_areas(data.rles)
    out = []
    for i, rle in enumerate(data.rles):
        out.append(
            {
                "segmentation": _segmentation(rle, output_mode),
                "area": areas[i],
                "bbox": _xywh(data.boxes[i], meta_types),
                "predicted_iou": float(data.iou[i]),
                "point_coords": [data.points[i].tolist()],
                "stability_score": float(data.stability[i]),
                "crop_box": _xywh(data.crop_boxes[i], meta_types),
            }
        )
    return out


def _segmentation(rle: dict[str, Any], output_mode: str) -> Any:
    if output_mode == "coco_rle":
        return rle
    uncompressed = {"size": list(rle["size"]), "counts": rle_counts(rle).tolist()}
    if output_mode == "binary_mask":
        return uncompressed_rle_to_mask(uncompressed)
    return uncompressed


def _xywh(box: torch.Tensor, meta_types: bool = False) -> list[int] | list[float]:
    if meta_types and box.is_floating_point():
        x0, y0, x1, y1 = (float(v) for v in box)
    else:
        x0, y0, x1, y1 = (int(v) for v in box)
    return [x0, y0, x1 - x0, y1 - y0]


def rle_counts(rle: dict[str, Any]) -> np.ndarray:
    """The run lengths of a compressed COCO RLE (``str`` or ``bytes`` counts) as int64.

    Decoded here, vectorised, rather than by ``pycocotools.mask.decode``, which warns under
    NumPy 2 (and would materialise the mask once more). The string holds one value per run
    in little-endian groups of 5 bits (characters from 48, bit 5 set while the value goes
    on, bit 4 of the last group the sign); from the third run on, a value is the difference
    to the run two before.
    """
    counts = rle["counts"]
    raw = counts.encode("ascii") if isinstance(counts, str) else bytes(counts)
    if not raw:
        return np.zeros(0, np.int64)
    chars = np.frombuffer(raw, np.uint8).astype(np.int64) - 48
    last = (chars & 0x20) == 0
    ends = np.flatnonzero(last)
    if not len(ends) or ends[-1] != len(chars) - 1 or (chars < 0).any() or (chars > 63).any():
        raise TijerasError(f"malformed COCO RLE counts {counts[:20]!r}...")
    starts = np.concatenate(([0], ends[:-1] + 1))
    position = np.arange(len(chars)) - np.repeat(starts, ends - starts + 1)
    values = np.add.reduceat((chars & 0x1F) << (5 * position), starts)
    negative = (chars[ends] & 0x10) != 0
    values[negative] -= np.left_shift(1, 5 * (ends - starts + 1))[negative]
    runs = values.copy()  # from the fourth run on, runs[i] = values[i] + runs[i - 2]
    runs[1::2] = np.cumsum(values[1::2])
    runs[2::2] = np.cumsum(values[2::2])
    return runs


def rle_to_mask(rle: dict[str, Any]) -> np.ndarray:
    """H x W bool mask of a compressed COCO RLE (see :func:`rle_counts`)."""
    return uncompressed_rle_to_mask({"size": list(rle["size"]), "counts": rle_counts(rle)})
