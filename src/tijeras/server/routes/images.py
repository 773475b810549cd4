"""Images: upload, status, delete; prompts; everything mode; the hover WebSocket.

Compute-bound handlers are plain ``def`` functions, so FastAPI runs them in its worker threads
and prompt decoding for encoded images goes on while the heavy queue encodes another image.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter, HTTPException, Request, WebSocket

from ...errors import PromptError
from .. import hover as hover_ws
from .. import service
from ..schemas import EverythingRequest, SegmentRequest, check_everything_cost
from .common import entry_or_404, hold_image, read_body, ready_or_409, status_json

router = APIRouter(tags=["images"])


@router.post("/images", status_code=201)
async def upload(request: Request) -> dict[str, Any]:
    """Upload an image as the raw request body (any format Pillow reads, or a GeoTIFF: its
    preview is segmented and ``geo`` describes the raster; see ``/geo/view``).

    The answer holds the image's id and size; its embedding is computed in the background
    (see ``GET /api/images/{id}`` for the progress). Header ``X-Filename`` names it
    (percent-encoded UTF-8, as ``encodeURIComponent`` makes it). A file
    that is not an image, too large, or arriving when every image held has kept objects, is
    refused and changes nothing.
    """
    settings = request.app.state.settings
    name = unquote(request.headers.get("x-filename", "image"))[:200] or "image"
    data = await read_body(request, settings.max_upload_bytes)
    entry = await hold_image(request, data, name)
    return status_json(request, entry)


@router.get("/images/{image_id}")
def status(request: Request, image_id: str) -> dict[str, Any]:
    """Size, encoding status and progress of an uploaded image."""
    return status_json(request, entry_or_404(request, image_id))


@router.delete("/images/{image_id}")
def delete(request: Request, image_id: str) -> dict[str, Any]:
    """Forget an image, its embedding, masks and objects."""
    if not request.app.state.store.remove(image_id):
        raise HTTPException(404, f"no image with id {image_id!r}")
    return {"deleted": image_id}


@router.post("/images/{image_id}/segment")
def segment(request: Request, image_id: str, body: SegmentRequest) -> dict[str, Any]:
    """Masks for a prompt, best first, as compressed COCO RLEs with ids for later requests."""
    entry = ready_or_409(request, image_id)
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
    """Start everything mode on the heavy queue; poll ``GET`` on the same path for masks.

    Options left out take the model's own defaults; a run over the server's
    ``max_everything_prompts`` is refused (422).
    """
    entry = ready_or_409(request, image_id)
    if entry.everything.get("status") in ("queued", "running"):
        return {"status": entry.everything["status"]}
    backend = request.app.state.backend
    try:
        options = backend.model.everything_defaults.replace(**body.model_dump())
        check_everything_cost(options, request.app.state.settings.max_everything_prompts)
    except ValueError as exc:
        raise PromptError(f"everything options: {exc}") from None
    entry.everything = {"status": "queued", "progress": 0.0, "options": options.as_dict()}
    request.app.state.queue.submit(entry.id, lambda: service.everything(entry, backend, options))
    return {"status": "queued"}


@router.get("/images/{image_id}/everything")
def get_everything(request: Request, image_id: str) -> dict[str, Any]:
    """Everything mode's status, progress, the options it ran with and (when done) its masks."""
    return dict(entry_or_404(request, image_id).everything)


@router.websocket("/images/{image_id}/hover")
async def hover(websocket: WebSocket, image_id: str) -> None:
    """Stream ``{"seq", "x", "y"}`` cursor positions; receive the mask for the newest one."""
    await hover_ws.serve(websocket, image_id)
