"""Request bodies of the HTTP API (validated by pydantic; coordinates in original pixels)."""

from __future__ import annotations

import math
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from ..automatic.options import FIELDS


def _pairs(description: str, examples: list | None = None) -> Any:
    """A list of [x, y] points: the validators below check the shape (naming the problem);
    the schema states it too, so clients and fuzzers see it."""
    pair = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
    return {"description": description, "examples": examples, "json_schema_extra": {"items": pair}}


def _finite(values: list[float], what: str) -> list[float]:
    for value in values:
        if not math.isfinite(value):
            raise ValueError(f"{what} must be finite numbers, got {value}")
    return values


class SegmentRequest(BaseModel):
    """A prompt: points with labels, a box, a previous mask, or a combination."""

    points: list[list[float]] | None = Field(
        None, **_pairs("N x 2 xy points in image pixels", [[[500, 375]]])
    )
    labels: list[int] | None = Field(
        None, description="N labels: 1 foreground, 0 background", examples=[[1]]
    )
    box: list[float] | None = Field(
        None,
        description="x0, y0, x1, y1 in image pixels",
        json_schema_extra={"minItems": 4, "maxItems": 4},
    )
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


# A server shared by several users caps the costliest options below the library's bounds.
SERVER_CAPS = {"points_per_side": 128, "points_per_batch": 1024, "crop_n_layers": 3}


def _everything_request() -> type[BaseModel]:
    """The request schema of everything mode, made from the options record: every field
    optional (None: the model's own default), with the record's bounds."""
    kinds = {"int": int, "float": float, "bool": bool}
    columns: dict[str, Any] = {}
    for name, spec in FIELDS.items():
        high = SERVER_CAPS.get(name, spec.metadata["max"])
        help_text = f"{spec.metadata['help']} Default: the model's ({spec.default!r} for SAM)."
        columns[name] = (
            Optional[kinds[spec.type]],  # noqa: UP045  (pydantic evaluates it at run time)
            Field(None, ge=spec.metadata["min"], le=high, description=help_text),
        )
    return create_model(
        "EverythingRequest",
        __doc__="Options of everything mode; those left out take the model's defaults.",
        __config__=ConfigDict(extra="forbid"),
        **columns,
    )


EverythingRequest = _everything_request()


def _everything_prompts(options: Any) -> int:
    """Prompts one everything run decodes: the grid of every crop layer."""
    total = 0
    for layer in range(options.crop_n_layers + 1):
        side = int(options.points_per_side / options.crop_n_points_downscale_factor**layer)
        total += 4**layer * side * side
    return total


def check_everything_cost(options: Any, limit: int) -> None:
    """Refuse a run over ``limit`` prompts: it would hold the queue every user shares."""
    prompts = _everything_prompts(options)
    if prompts > limit:
        raise ValueError(
            f"points_per_side {options.points_per_side} with crop_n_layers "
            f"{options.crop_n_layers} decodes {prompts} prompts; this server allows "
            f"{limit} per run"
        )


def _object_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise ValueError("an object name needs at least one visible character")
    return cleaned


OBJECT_ID = r"^[A-Za-z0-9_-]{6,32}$"


class KeepRequest(BaseModel):
    """Keep one of the image's masks as a named object."""

    mask_id: str = Field(..., max_length=64)
    name: str = Field("object", min_length=1, max_length=100)
    id: str | None = Field(
        None,
        pattern=OBJECT_ID,
        description="the object's id, when restoring one (an undone delete); new otherwise",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return _object_name(name)


class RenameRequest(BaseModel):
    """A kept object's new name."""

    name: str = Field(..., min_length=1, max_length=100)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return _object_name(name)


class Stroke(BaseModel):
    """One brush stroke over a mask: a polyline of round dabs."""

    mode: Literal["add", "erase"]
    radius: float = Field(..., ge=0.5, le=1000, description="brush radius in image pixels")
    points: list[list[float]] = Field(
        ..., min_length=1, max_length=5000, **_pairs("xy points of the stroke, in order")
    )

    @field_validator("points")
    @classmethod
    def _points(cls, points: list[list[float]]) -> list[list[float]]:
        for point in points:
            if len(point) != 2:
                raise ValueError(f"each stroke point must be [x, y], got {point}")
            _finite(point, "stroke points")
            if any(abs(v) > 1e6 for v in point):
                raise ValueError(f"stroke point {point} is far outside any image")
        return points


class EditRequest(BaseModel):
    """Brush strokes that add pixels to a mask or erase them, applied in order."""

    strokes: list[Stroke] = Field(..., min_length=1, max_length=200)


class FolderOpenRequest(BaseModel):
    """Open one image of the served folder by its name (as ``GET /api/folder`` lists it)."""

    name: str = Field(..., min_length=1, max_length=1000)


class FolderCocoRequest(BaseModel):
    """Write the COCO file of the whole folder (every image opened, with its kept objects)."""

    path: str = Field(
        "annotations.coco.json",
        min_length=1,
        max_length=1000,
        description="where to write it: a .json path inside the served folder",
    )
    segmentation: Literal["rle", "polygon"] = "rle"
    overwrite: bool = Field(False, description="replace an existing file")


class TextRequest(BaseModel):
    """A noun phrase to find every instance of (models that take text prompts: SAM 3)."""

    text: str = Field(
        ..., max_length=1000, description="a noun phrase, e.g. tomato", examples=["tomato"]
    )
    threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="instances scoring above it are answered (0-1)"
    )

    @field_validator("text")
    @classmethod
    def _text(cls, text: str) -> str:
        cleaned = " ".join(text.split())
        if not cleaned:
            raise ValueError("the phrase is empty: type what to find (e.g. tomato)")
        return cleaned


class GeoViewRequest(BaseModel):
    """Which bands of a GeoTIFF the preview shows, and how they are stretched."""

    bands: list[int] = Field(
        ...,
        min_length=1,
        max_length=3,
        description="1-based bands: one (grey) or three (red, green, blue)",
        examples=[[4, 3, 2]],
    )
    stretch: list[float] | None = Field(
        None,
        description="low and high percentiles mapped to 0 and 255; null: 8-bit values as they "
        "are, other data at 2, 98",
        json_schema_extra={"minItems": 2, "maxItems": 2},
    )

    @field_validator("bands")
    @classmethod
    def _bands(cls, bands: list[int]) -> list[int]:
        if len(bands) not in (1, 3):
            raise ValueError(f"give 1 band (grey) or 3 bands (red, green, blue), got {bands}")
        for band in bands:
            if band < 1:
                raise ValueError(f"bands are numbered from 1, got {band}")
        return bands

    @field_validator("stretch")
    @classmethod
    def _stretch(cls, stretch: list[float] | None) -> list[float] | None:
        if stretch is None:
            return None
        if len(stretch) != 2:
            raise ValueError(f"stretch must be [low, high] percentiles, got {stretch}")
        low, high = _finite(stretch, "stretch percentiles")
        if not 0.0 <= low < high <= 100.0:
            raise ValueError(
                f"stretch percentiles must satisfy 0 <= low < high <= 100, got {stretch}"
            )
        return stretch
