"""SAM 2's mask decoder, which lives in :mod:`tijeras.models.blocks.sam2_decoder` (SAM 3's
interactive head shares it); re-exported here under the names SAM 2's modules import."""

from __future__ import annotations

from ..blocks.sam2_decoder import (
    Sam2MaskDecoder,
    build_transformer,
    project_high_res,
    select_masks,
    stability_scores,
)

__all__ = [
    "Sam2MaskDecoder",
    "build_transformer",
    "project_high_res",
    "select_masks",
    "stability_scores",
]
