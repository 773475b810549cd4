"""What the route modules share: looking entries up (404/409 naming the id), reading and
checking an uploaded image (a GeoTIFF becomes its preview), and holding a new image with its
encoding queued."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from ...errors import ImageError, ImageTooLargeError
from ...geo.errors import GeoError
from ...io.image import load_image, read_image_size
from .. import geo, service
from ..store import ImageEntry, MaskEntry, StoreFullError


def entry_or_404(request: Request, image_id: str) -> ImageEntry:
    entry = request.app.state.store.get(image_id)
    if entry is None:
        raise HTTPException(
            404, f"no image with id {image_id!r} (never uploaded, deleted or expired)"
        )
    return entry


def ready_or_409(request: Request, image_id: str) -> ImageEntry:
    entry = entry_or_404(request, image_id)
    if entry.status == "failed":
        raise HTTPException(409, entry.error or "encoding failed")
    if entry.status != "ready":
        raise HTTPException(409, f"image {image_id} is not encoded yet (status: {entry.status})")
    return entry


def mask_or_404(request: Request, image_id: str, mask_id: str) -> tuple[ImageEntry, MaskEntry]:
    entry = entry_or_404(request, image_id)
    mask = entry.mask(mask_id)
    if mask is None:
        raise HTTPException(404, f"no mask with id {mask_id!r} for this image")
    return entry, mask


def status_json(request: Request, entry: ImageEntry) -> dict[str, Any]:
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
        "folder_file": entry.folder_file,
        "objects": len(entry.objects),
        "geo": None if entry.geo is None else entry.geo.describe(),
    }


async def read_body(request: Request, limit: int) -> bytes:
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


def decode_image(data: bytes, max_pixels: int, label: str) -> np.ndarray:
    """Decode image bytes after checking the pixel count from the header alone (so a
    decompression bomb is refused before it is decoded)."""
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


def open_tiff(data: bytes, name: str, max_side: int) -> tuple[np.ndarray, Any] | None:
    """A GeoTIFF's preview and georeference (:mod:`tijeras.server.geo`); None for any other
    file, which is decoded as a picture."""
    if not geo.is_tiff(data):
        return None
    try:
        return geo.open_geotiff(data, name, max_side)
    except GeoError as err:
        raise HTTPException(415, f"{name!r}: {err}") from err


async def hold_image(
    request: Request, data: bytes, name: str, folder_file: str | None = None
) -> ImageEntry:
    """Check, decode and hold an image, and queue its encoding; nothing held changes when any
    check fails."""
    store = request.app.state.store
    try:
        store.check_room()
    except StoreFullError as err:
        raise HTTPException(409, str(err)) from None
    settings = request.app.state.settings
    opened = await run_in_threadpool(open_tiff, data, name, settings.geo_preview_side)
    if opened is None:
        pixels = await run_in_threadpool(decode_image, data, settings.max_pixels, repr(name))
    else:
        pixels = opened[0]
    try:
        entry = store.add(pixels, name, folder_file=folder_file)
    except StoreFullError as err:
        raise HTTPException(409, str(err)) from None
    if opened is not None:
        entry.geo = opened[1]
    folder = request.app.state.folder
    if folder is not None and folder_file is not None:
        folder.restore(entry)
    backend = request.app.state.backend
    request.app.state.queue.submit(entry.id, lambda: service.encode(entry, backend))
    return entry
