"""Typed columns of candidate masks, filtered and concatenated without copying Python lists."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


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
