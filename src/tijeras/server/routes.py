"""The HTTP API under ``/api/images``: upload, status, prompts, everything, objects, exports.

Compute-bound handlers are plain ``def`` functions, so FastAPI runs them in its worker threads
and prompt decoding for encoded images goes on while the heavy queue encodes another image.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, WebSocket
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from ..errors import ImageError, ImageTooLargeError
from ..io.image import load_image, read_image_size
from . import hover as hover_ws
from . import service
from .schemas import EverythingRequest, KeepRequest, RenameRequest, SegmentRequest
from .store import ImageEntry, KeptObject

router = APIRouter(tags=["images"])


def _entry(request: Request, image_id: str) -> ImageEntry:
    entry = request.app.state.store.get(image_id)
    if entry is None:
        raise HTTPException(
            404, f"no image with id {image_id!r} (never uploaded, deleted or expired)"
        )
    return entry


def _ready(request: Request, image_id: str) -> ImageEntry:
    entry = _entry(request, image_id)
    if entry.status == "failed":
        raise HTTPException(409, entry.error or "encoding failed")
    if entry.status != "ready":
        raise HTTPException(409, f"image {image_id} is not encoded yet (status: {entry.status})")
    return entry


def _status(request: Request, entry: ImageEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "name": entry.name,
        "width": entry.width,
        "height": entry.height,
        "status": entry.status,
        "progress": entry.progress,
        "queue_position": request.app.state.queue.position(entry.id),
        "encode_seconds": round(entry.encode_seconds, 3),
        "error": entry.error,
    }


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the upload is {int(declared)} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"the upload is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    if size == 0:
        raise HTTPException(400, "the upload is empty: send the image file as the request body")
    return b"".join(chunks)


def _decode_upload(data: bytes, max_pixels: int, label: str) -> Any:
    try:
        height, width = read_image_size(data)
    except ImageTooLargeError as err:
        raise HTTPException(413, f"{label}: {err}") from err
    except ImageError as err:
        raise HTTPException(415, f"{label}: not a supported image ({err})") from err
    if height * width > max_pixels:
        raise HTTPException(
            413,
            f"{label} is {width} x {height} = {width * height} pixels; the limit is {max_pixels}",
        )
    try:
        return load_image(data)
    except ImageError as err:
        raise HTTPException(415, f"{label}: the image cannot be decoded ({err})") from err


@router.post("/images", status_code=201)
async def upload(request: Request) -> dict[str, Any]:
    """Upload an image as the raw request body (any format Pillow reads).

    The answer holds the image's id and size; its embedding is computed in the background
    (see ``GET /api/images/{id}`` for the progress). Header ``X-Filename`` names it.
    """
    settings = request.app.state.settings
    name = request.headers.get("x-filename", "image")[:200]
    data = await _read_body(request, settings.max_upload_bytes)
    pixels = await run_in_threadpool(_decode_upload, data, settings.max_pixels, repr(name))
    entry = request.app.state.store.add(pixels, name)
    backend = request.app.state.backend
    request.app.state.queue.submit(entry.id, lambda: service.encode(entry, backend))
    return _status(request, entry)


@router.get("/images/{image_id}")
def status(request: Request, image_id: str) -> dict[str, Any]:
    """Size, encoding status and progress of an uploaded image."""
    return _status(request, _entry(request, image_id))


@router.delete("/images/{image_id}")
def delete(request: Request, image_id: str) -> dict[str, Any]:
    """Forget an image, its embedding, masks and objects."""
    if not request.app.state.store.remove(image_id):
        raise HTTPException(404, f"no image with id {image_id!r}")
    return {"deleted": image_id}


@router.post("/images/{image_id}/segment")
def segment(request: Request, image_id: str, body: SegmentRequest) -> dict[str, Any]:
    """Masks for a prompt, best first, as compressed COCO RLEs with ids for later requests."""
    entry = _ready(request, image_id)
    masks = service.segment(
        entry,
        request.app.state.backend,
        body.points,
        body.labels,
        body.box,
        body.mask_input,
        body.multimask,
    )
    return {"masks": [service.describe(i, m) for i, m in masks]}


@router.post("/images/{image_id}/everything", status_code=202)
def start_everything(request: Request, image_id: str, body: EverythingRequest) -> dict[str, Any]:
    """Start everything mode on the heavy queue; poll ``GET`` on the same path for masks."""
    entry = _ready(request, image_id)
    if entry.everything.get("status") in ("queued", "running"):
        return {"status": entry.everything["status"]}
    entry.everything = {"status": "queued", "progress": 0.0}
    backend, options = request.app.state.backend, body.model_dump()
    request.app.state.queue.submit(entry.id, lambda: service.everything(entry, backend, options))
    return {"status": "queued"}


@router.get("/images/{image_id}/everything")
def get_everything(request: Request, image_id: str) -> dict[str, Any]:
    """Everything mode's status, progress and (when done) its masks."""
    return dict(_entry(request, image_id).everything)


def _mask(request: Request, image_id: str, mask_id: str) -> tuple[ImageEntry, Any]:
    entry = _entry(request, image_id)
    mask = entry.mask(mask_id)
    if mask is None:
        raise HTTPException(404, f"no mask with id {mask_id!r} for this image")
    return entry, mask


@router.get("/images/{image_id}/masks/{mask_id}")
def get_mask(request: Request, image_id: str, mask_id: str) -> dict[str, Any]:
    """One mask: score, area, box and RLE."""
    _, mask = _mask(request, image_id, mask_id)
    return service.describe(mask_id, mask)


def _png(data: bytes, filename: str) -> Response:
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(data, media_type="image/png", headers=headers)


@router.get("/images/{image_id}/masks/{mask_id}/cutout.png")
def cutout(request: Request, image_id: str, mask_id: str) -> Response:
    """The object on a transparent background, cropped to its box (RGBA PNG)."""
    entry, mask = _mask(request, image_id, mask_id)
    if mask.area == 0:
        raise HTTPException(422, "the mask is empty: nothing to cut out")
    return _png(service.cutout_png(entry, mask), "cutout.png")


@router.get("/images/{image_id}/masks/{mask_id}/mask.png")
def mask_png(request: Request, image_id: str, mask_id: str) -> Response:
    """The mask as a 0/255 PNG of the image's size."""
    _, mask = _mask(request, image_id, mask_id)
    return _png(service.mask_png(mask), "mask.png")


@router.get("/images/{image_id}/masks/{mask_id}/inpaint.png")
def inpaint_png(
    request: Request, image_id: str, mask_id: str, dilate: int = Query(0, ge=0, le=500)
) -> Response:
    """An inpainting mask: the mask grown by ``dilate`` pixels, 0/255 PNG."""
    _, mask = _mask(request, image_id, mask_id)
    return _png(service.inpaint_png(mask, dilate), "inpaint-mask.png")


@router.get("/images/{image_id}/objects")
def list_objects(request: Request, image_id: str) -> dict[str, Any]:
    """The kept objects, in the order they were kept."""
    entry = _entry(request, image_id)
    with entry.lock:
        return {"objects": [vars(o).copy() for o in entry.objects]}


@router.post("/images/{image_id}/objects", status_code=201)
def keep(request: Request, image_id: str, body: KeepRequest) -> dict[str, Any]:
    """Keep a mask as a named object (for the COCO export)."""
    entry, _ = _mask(request, image_id, body.mask_id)
    from secrets import token_urlsafe

    obj = KeptObject(id=token_urlsafe(9), name=body.name, mask_id=body.mask_id)
    with entry.lock:
        entry.objects.append(obj)
    return vars(obj).copy()


def _object(entry: ImageEntry, object_id: str) -> KeptObject:
    for obj in entry.objects:
        if obj.id == object_id:
            return obj
    raise HTTPException(404, f"no kept object with id {object_id!r}")


@router.patch("/images/{image_id}/objects/{object_id}")
def rename(request: Request, image_id: str, object_id: str, body: RenameRequest) -> dict[str, Any]:
    """Rename a kept object."""
    entry = _entry(request, image_id)
    with entry.lock:
        obj = _object(entry, object_id)
        obj.name = body.name
        return vars(obj).copy()


@router.delete("/images/{image_id}/objects/{object_id}")
def unkeep(request: Request, image_id: str, object_id: str) -> dict[str, Any]:
    """Remove a kept object (its mask stays available until evicted)."""
    entry = _entry(request, image_id)
    with entry.lock:
        entry.objects.remove(_object(entry, object_id))
    return {"deleted": object_id}


@router.get("/images/{image_id}/coco.json")
def coco(request: Request, image_id: str) -> JSONResponse:
    """A COCO dataset of the kept objects (compressed RLE segmentations, one category per name)."""
    entry = _entry(request, image_id)
    headers = {"Content-Disposition": 'attachment; filename="objects.coco.json"'}
    return JSONResponse(service.coco_json(entry, entry.name), headers=headers)


@router.websocket("/images/{image_id}/hover")
async def hover(websocket: WebSocket, image_id: str) -> None:
    """Stream ``{"seq", "x", "y"}`` cursor positions; receive the mask for the newest one."""
    await hover_ws.serve(websocket, image_id)
