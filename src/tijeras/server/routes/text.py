"""Text prompts: every instance of a noun phrase in an encoded image (models that take text,
SAM 3). Each instance is stored like a click's mask, so the mask, keep and COCO endpoints take
its id."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from .. import text
from ..schemas import TextRequest
from .common import ready_or_409

router = APIRouter(tags=["images"])


@router.post("/images/{image_id}/text")
def find_text(request: Request, image_id: str, body: TextRequest) -> dict[str, Any]:
    """Every instance of ``text`` scoring above ``threshold``, best first.

    The answer: ``text``, ``threshold``, ``presence`` (how sure the model is that the concept is
    in the image), ``count`` and ``instances`` (masks as ``/segment`` answers them, plus the
    detector's ``box``). No instance is an answer, not an error. A model without text prompts,
    or a phrase over the tokenizer's context length, is refused (422) naming the problem.
    """
    entry = ready_or_409(request, image_id)
    return text.segment_text(entry, body.text, body.threshold)
