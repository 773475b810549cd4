"""Text prompts on an open image: every instance of a noun phrase, stored as the image's masks.

:func:`segment_text` is what a ``POST /api/images/{id}/text`` route answers (``{"text",
"threshold"}`` in; the instances out). Each instance is stored on the image like a click's
mask, so the cut-out, mask, inpainting, keep and COCO endpoints take its id. A model without
text prompts, an empty or over-long phrase, or a threshold outside [0, 1] is a
:class:`~tijeras.errors.PromptError` naming it (a 4xx answer).
"""

from __future__ import annotations

from typing import Any

from ..errors import PromptError
from ..io.rle import coco_rle
from .service import describe, mask_entry, on_decoder
from .store import ImageEntry

SOURCE = "text"  # MaskEntry.source of the instances of a phrase


def takes_text(model: Any) -> bool:
    """Whether a loaded model takes text prompts (its family lists them: SAM 3)."""
    spec = getattr(model, "input_spec", None)
    return spec is not None and "text" in spec.prompt_kinds


def segment_text(entry: ImageEntry, phrase: str, threshold: float = 0.5) -> dict[str, Any]:
    """Find every instance of ``phrase`` in an encoded image and store them, best first.

    Returns:
        ``{"text", "threshold", "presence", "count", "instances"}``: ``presence`` (0-1) how
        sure the model is that the concept is in the image; each instance as
        :func:`~tijeras.server.service.describe` gives a mask (``id``, ``score``, ``area``,
        ``bbox`` XYWH of the mask, ``source`` = ``"text"``, ``rle`` compressed COCO RLE at full
        size) plus ``box``: the detector's box x0, y0, x1, y1 in image pixels.
    """
    predictor = entry.predictor
    if predictor is None:
        raise PromptError(f"image {entry.id} is not encoded yet (status: {entry.status})")
    found = on_decoder(lambda: predictor.segment_text(phrase, threshold=threshold))
    rles = coco_rle(found.masks)
    instances = []
    for mask, rle, box, score in zip(found.masks, rles, found.boxes.tolist(), found.scores):
        stored = mask_entry(mask, rle, float(score), SOURCE)
        mask_id = entry.add_mask(stored, entry.mask_limit)
        instances.append({**describe(mask_id, stored), "box": [round(v, 2) for v in box]})
    return {
        "text": phrase,
        "threshold": float(threshold),
        "presence": round(found.presence, 5),
        "count": len(instances),
        "instances": instances,
    }
