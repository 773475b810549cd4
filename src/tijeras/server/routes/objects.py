"""Kept objects: keep a mask under a name, rename, remove; the COCO file of an image."""

from __future__ import annotations

from secrets import token_urlsafe
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from .. import exports
from ..naming import content_disposition, download_name
from ..schemas import KeepRequest, RenameRequest
from ..store import ImageEntry, KeptObject
from .common import entry_or_404, mask_or_404

router = APIRouter(tags=["objects"])


def _object(entry: ImageEntry, object_id: str) -> KeptObject:
    for obj in entry.objects:
        if obj.id == object_id:
            return obj
    raise HTTPException(404, f"no kept object with id {object_id!r}")


def _remember(request: Request, entry: ImageEntry) -> None:
    folder = request.app.state.folder
    if folder is not None:
        folder.remember(entry)


@router.get("/images/{image_id}/objects")
def list_objects(request: Request, image_id: str) -> dict[str, Any]:
    """The kept objects, in the order they were kept."""
    entry = entry_or_404(request, image_id)
    with entry.lock:
        return {"objects": [vars(o).copy() for o in entry.objects]}


@router.post("/images/{image_id}/objects", status_code=201)
def keep(request: Request, image_id: str, body: KeepRequest) -> dict[str, Any]:
    """Keep a mask as a named object (for the COCO export). ``id`` restores an object under
    its former id (undoing its removal); it must not be in use."""
    entry, mask = mask_or_404(request, image_id, body.mask_id)
    limit = request.app.state.settings.max_objects
    with entry.lock:
        if len(entry.objects) >= limit:
            raise HTTPException(409, f"this image has {limit} kept objects, the most it may hold")
        if body.id is not None and any(o.id == body.id for o in entry.objects):
            raise HTTPException(409, f"an object with id {body.id!r} is already kept")
        obj = KeptObject(id=body.id or token_urlsafe(9), name=body.name, mask_id=body.mask_id)
        mask.pinned = True
        entry.objects.append(obj)
        answer = vars(obj).copy()
    _remember(request, entry)
    return answer


@router.patch("/images/{image_id}/objects/{object_id}")
def rename(request: Request, image_id: str, object_id: str, body: RenameRequest) -> dict[str, Any]:
    """Rename a kept object."""
    entry = entry_or_404(request, image_id)
    with entry.lock:
        obj = _object(entry, object_id)
        obj.name = body.name
        answer = vars(obj).copy()
    _remember(request, entry)
    return answer


@router.delete("/images/{image_id}/objects/{object_id}")
def unkeep(request: Request, image_id: str, object_id: str) -> dict[str, Any]:
    """Remove a kept object (its mask stays, so the removal can be undone)."""
    entry = entry_or_404(request, image_id)
    with entry.lock:
        entry.objects.remove(_object(entry, object_id))
    _remember(request, entry)
    return {"deleted": object_id}


@router.get("/images/{image_id}/coco.json")
def coco(
    request: Request,
    image_id: str,
    segmentation: Literal["rle", "polygon"] = Query(
        "rle", description="rle: exact compressed RLEs; polygon: COCO polygons (RLE for holes)"
    ),
) -> JSONResponse:
    """A COCO dataset of the kept objects (one category per name)."""
    entry = entry_or_404(request, image_id)
    kind = "coco" if segmentation == "rle" else "coco-polygons"
    headers = {
        "Content-Disposition": content_disposition(download_name(entry.name, None, kind, "json"))
    }
    return JSONResponse(exports.coco_json(entry, segmentation), headers=headers)
