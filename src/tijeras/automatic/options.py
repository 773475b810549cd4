"""Everything-mode options: one record per family, the single source of every default.

The record is torch-free, so the CLI builds its flags and the server its request schema from
it without importing a model. A family declares its defaults as an instance
(``SAM_EVERYTHING``, ``SAM2_EVERYTHING``...) in its spec; the generators take the same record,
and ``options.replace(**changes)`` checks every change against the bounds below, so a value the
CLI or the server would refuse is refused from Python too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any


def _opt(default: Any, help: str, low: float | None = None, high: float | None = None) -> Any:
    return field(default=default, metadata={"help": help, "min": low, "max": high})


@dataclass(frozen=True)
class EverythingOptions:
    """How everything mode lays its grid and which candidates it keeps.

    The first fields are those of Meta's ``SamAutomaticMaskGenerator``; ``mask_threshold``,
    ``use_m2m`` and ``multimask_output`` are SAM 2's additions (families without them keep the
    defaults). Bounds (``min``/``max`` in each field's metadata) are checked on construction.
    """

    points_per_side: int = _opt(32, "Grid points per side (points_per_side^2 prompts).", 1, 256)
    points_per_batch: int = _opt(64, "Prompts decoded together.", 1, 4096)
    pred_iou_thresh: float = _opt(0.88, "Keep masks with predicted IoU above this.", 0.0, 1.0)
    stability_score_thresh: float = _opt(0.95, "Keep masks with stability at least this.", 0.0, 1.0)
    stability_score_offset: float = _opt(1.0, "Logit offset of the stability score.", 0.0)
    box_nms_thresh: float = _opt(0.7, "Box IoU for removing duplicates.", 0.0, 1.0)
    crop_n_layers: int = _opt(0, "Extra layers of crops (layer i has 4^i crops).", 0, 4)
    crop_nms_thresh: float = _opt(0.7, "Box IoU for duplicates between crops.", 0.0, 1.0)
    crop_overlap_ratio: float = _opt(
        512 / 1500, "Overlap of neighbouring crops, a fraction in [0, 1).", 0.0, 0.99
    )
    crop_n_points_downscale_factor: int = _opt(
        1, "Points per side divided by this at each crop layer.", 1
    )
    min_mask_region_area: int = _opt(0, "Fill holes and remove islands smaller than this (px).", 0)
    mask_threshold: float = _opt(0.0, "Logit threshold of the masks.")
    use_m2m: bool = _opt(False, "Refine each candidate once with its own mask (SAM 2).")
    multimask_output: bool = _opt(True, "Three candidates per point instead of one (SAM 2).")

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("int", "float") and isinstance(value, bool):
                raise ValueError(f"{f.name} must be a number, got {value!r}")
            low, high = f.metadata.get("min"), f.metadata.get("max")
            if low is not None and value < low:
                raise ValueError(f"{f.name} must be at least {low:g}, got {value!r}")
            if high is not None and value > high:
                raise ValueError(f"{f.name} must be at most {high:g}, got {value!r}")
        points = self.points_per_side / self.crop_n_points_downscale_factor**self.crop_n_layers
        if int(points) < 1:
            raise ValueError(
                f"points_per_side {self.points_per_side} leaves no points on crop layer "
                f"{self.crop_n_layers} with crop_n_points_downscale_factor "
                f"{self.crop_n_points_downscale_factor}"
            )

    def replace(self, **changes: Any) -> EverythingOptions:
        """A copy with ``changes`` (None values keep the default); unknown names raise."""
        unknown = sorted(set(changes) - set(NAMES))
        if unknown:
            raise TypeError(
                f"unknown everything-mode option{'s' if len(unknown) > 1 else ''}: "
                f"{', '.join(unknown)}; known: {', '.join(NAMES)}"
            )
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


NAMES: tuple[str, ...] = tuple(f.name for f in fields(EverythingOptions))
FIELDS: Mapping[str, dataclasses.Field] = {f.name: f for f in fields(EverythingOptions)}

SAM_EVERYTHING = EverythingOptions()
"""Meta's defaults for SAM and MobileSAM."""

SAM2_EVERYTHING = EverythingOptions(pred_iou_thresh=0.8)
"""Meta's defaults for SAM 2 and SAM 2.1 (``SAM2AutomaticMaskGenerator``)."""
