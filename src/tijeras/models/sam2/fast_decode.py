"""SAM 2's fast decode path, which lives in :mod:`tijeras.models.blocks.sam2_fast_decode`
(SAM 3's interactive head shares it); re-exported here under the names SAM 2's modules use."""

from __future__ import annotations

from ..blocks.sam2_fast_decode import CHUNK, Sam2ImageTokens, decode, prepare_image

__all__ = ["CHUNK", "Sam2ImageTokens", "decode", "prepare_image"]
