"""Request bodies of the HTTP API (validated by pydantic; coordinates in original pixels)."""

from __future__ import annotations

import math

from pydantic import BaseModel, Field, field_validator, model_validator


def _finite(values: list[float], what: str) -> list[float]:
    for value in values:
        if not math.isfinite(value):
            raise ValueError(f"{what} must be finite numbers, got {value}")
    return values


class SegmentRequest(BaseModel):
    """A prompt: points with labels, a box, a previous mask, or a combination."""

    points: list[list[float]] | None = Field(
        None, description="N x 2 xy points in image pixels", examples=[[[500, 375]]]
    )
    labels: list[int] | None = Field(
        None, description="N labels: 1 foreground, 0 background", examples=[[1]]
    )
    box: list[float] | None = Field(None, description="x0, y0, x1, y1 in image pixels")
    mask_input: str | None = Field(
        None, description="id of an earlier mask whose low-res logits refine this prompt"
    )
    multimask: bool = Field(True, description="three candidates (part, subpart, whole)")

    @field_validator("points")
    @classmethod
    def _points(cls, points: list[list[float]] | None) -> list[list[float]] | None:
        if points is None:
            return None
        if not points:
            raise ValueError("points is empty; leave it out or give at least one [x, y]")
        for point in points:
            if len(point) != 2:
                raise ValueError(f"each point must be [x, y], got {point}")
            _finite(point, "point coordinates")
        return points

    @field_validator("box")
    @classmethod
    def _box(cls, box: list[float] | None) -> list[float] | None:
        if box is not None:
            if len(box) != 4:
                raise ValueError(f"box must be [x0, y0, x1, y1], got {box}")
            _finite(box, "box coordinates")
        return box

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: list[int] | None) -> list[int] | None:
        if labels is not None and any(v not in (0, 1) for v in labels):
            raise ValueError(f"labels must be 1 (foreground) or 0 (background), got {labels}")
        return labels

    @model_validator(mode="after")
    def _consistent(self) -> SegmentRequest:
        if self.points is None and self.box is None and self.mask_input is None:
            raise ValueError("no prompt given: send points, a box or a mask_input")
        if (self.points is None) != (self.labels is None):
            raise ValueError("points and labels must be given together")
        if self.points is not None and len(self.points) != len(self.labels or []):
            raise ValueError(
                f"{len(self.points)} points but {len(self.labels or [])} labels were given"
            )
        return self


class EverythingRequest(BaseModel):
    """Options of everything mode (the generator's, with lighter defaults for a CPU)."""

    points_per_side: int = Field(32, ge=1, le=128)
    points_per_batch: int = Field(64, ge=1, le=1024)
    pred_iou_thresh: float = Field(0.88, ge=0.0, le=1.0)
    stability_score_thresh: float = Field(0.95, ge=0.0, le=1.0)
    box_nms_thresh: float = Field(0.7, ge=0.0, le=1.0)
    crop_n_layers: int = Field(0, ge=0, le=3)
    min_mask_region_area: int = Field(0, ge=0)


class KeepRequest(BaseModel):
    """Keep one of the image's masks as a named object."""

    mask_id: str
    name: str = Field("object", min_length=1, max_length=100)


class RenameRequest(BaseModel):
    name: str = Field(..., min_length=1, max_length=100)
