"""The HTTP API under ``/api``, one module per concern: ``images`` (upload, prompts,
everything, hover), ``masks`` (a mask and its files), ``objects`` (kept objects, COCO),
``folder`` (``tijeras serve --folder``), ``text`` (every instance of a phrase), ``geo``
(GeoTIFF previews, bands, GeoJSON) and ``video`` (videos: frames, prompts, tracking, files)."""

from __future__ import annotations

from fastapi import APIRouter

from . import folder, geo, images, masks, objects, text, video

router = APIRouter()
for _module in (images, masks, objects, folder, text, geo, video):
    router.include_router(_module.router)

__all__ = ["router"]
