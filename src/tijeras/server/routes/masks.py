"""One mask and what it becomes: its record, a brushed copy, PNGs, the erased photo, a sticker.

Every file is answered with a ``Content-Disposition`` name made of the image's and the object's
names (``002-penguin-cutout.png``): ``?name=`` gives the object's name, else the name it was
kept under, else ``object``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import Response

from .. import exports, service
from ..naming import content_disposition, download_name
from ..schemas import EditRequest
from ..store import ImageEntry, MaskEntry
from .common import mask_or_404

router = APIRouter(tags=["masks"])

NameQuery = Query(
    None, max_length=100, description="the object's name in the file name (default: its kept name)"
)


def _label(entry: ImageEntry, mask_id: str, name: str | None) -> str:
    if name and name.strip():
        return name
    with entry.lock:
        kept = [o.name for o in entry.objects if o.mask_id == mask_id]
    return kept[0] if kept else "object"


def _file(data: bytes, media_type: str, filename: str) -> Response:
    return Response(
        data,
        media_type=media_type,
        headers={"Content-Disposition": content_disposition(filename)},
    )


def _not_empty(mask: MaskEntry, what: str) -> None:
    if mask.area == 0:
        raise HTTPException(422, f"the mask is empty: nothing to {what}")


@router.get("/images/{image_id}/masks/{mask_id}")
def get_mask(request: Request, image_id: str, mask_id: str) -> dict[str, Any]:
    """One mask: score, area, box and RLE."""
    _, mask = mask_or_404(request, image_id, mask_id)
    return service.describe(mask_id, mask)


@router.post("/images/{image_id}/masks/{mask_id}/edit", status_code=201)
def edit(request: Request, image_id: str, mask_id: str, body: EditRequest) -> dict[str, Any]:
    """A new mask: this one with brush strokes that add or erase pixels (the original stays)."""
    entry, mask = mask_or_404(request, image_id, mask_id)
    edited = exports.edit(entry, mask, body.strokes)
    return service.describe(entry.add_mask(edited, entry.mask_limit), edited)


@router.get("/images/{image_id}/masks/{mask_id}/cutout.png")
def cutout(request: Request, image_id: str, mask_id: str, name: str | None = NameQuery) -> Response:
    """The object on a transparent background, cropped to its box (RGBA PNG)."""
    entry, mask = mask_or_404(request, image_id, mask_id)
    _not_empty(mask, "cut out")
    filename = download_name(entry.name, _label(entry, mask_id, name), "cutout", "png")
    return _file(exports.cutout_png(entry, mask), "image/png", filename)


@router.get("/images/{image_id}/masks/{mask_id}/mask.png")
def mask_png(
    request: Request, image_id: str, mask_id: str, name: str | None = NameQuery
) -> Response:
    """The mask as a 0/255 PNG of the image's size."""
    entry, mask = mask_or_404(request, image_id, mask_id)
    filename = download_name(entry.name, _label(entry, mask_id, name), "mask", "png")
    return _file(exports.mask_png(mask), "image/png", filename)


@router.get("/images/{image_id}/masks/{mask_id}/inpaint.png")
def inpaint_png(
    request: Request,
    image_id: str,
    mask_id: str,
    dilate: int = Query(0, ge=0, le=500, description="grow the mask by this many pixels"),
    name: str | None = NameQuery,
) -> Response:
    """An inpainting mask: the mask grown by ``dilate`` pixels, 0/255 PNG."""
    entry, mask = mask_or_404(request, image_id, mask_id)
    filename = download_name(entry.name, _label(entry, mask_id, name), "inpaint-mask", "png")
    return _file(exports.inpaint_png(mask, dilate), "image/png", filename)


@router.get("/images/{image_id}/masks/{mask_id}/erase.{suffix}")
def erase(
    request: Request,
    image_id: str,
    mask_id: str,
    suffix: str = Path(..., pattern="^(png|jpg)$", description="png or jpg"),
    dilate: int = Query(8, ge=0, le=100, description="grow the mask by this many pixels first"),
    name: str | None = NameQuery,
) -> Response:
    """The photo with the object erased: its pixels (the mask grown by ``dilate``) filled
    from their surroundings by OpenCV's inpainting. A learned inpainter fills large areas
    better; this one needs no model."""
    entry, mask = mask_or_404(request, image_id, mask_id)
    _not_empty(mask, "erase")
    filename = download_name(entry.name, _label(entry, mask_id, name), "erased", suffix)
    data = exports.erased(entry, mask, dilate, suffix)
    return _file(data, exports.IMAGE_FORMATS[suffix][1], filename)


@router.get("/images/{image_id}/masks/{mask_id}/sticker.webp")
def sticker(
    request: Request,
    image_id: str,
    mask_id: str,
    outline: int = Query(0, ge=0, le=16, description="white outline width in pixels (0: none)"),
    margin: int = Query(16, ge=0, le=64, description="transparent margin in pixels"),
    name: str | None = NameQuery,
) -> Response:
    """The object as a 512 x 512 WebP sticker with transparency, centred with a margin."""
    entry, mask = mask_or_404(request, image_id, mask_id)
    _not_empty(mask, "make a sticker of")
    if outline > margin:
        raise HTTPException(422, f"outline {outline} must fit in the margin ({margin} px)")
    filename = download_name(entry.name, _label(entry, mask_id, name), "sticker", "webp")
    return _file(exports.sticker_webp(entry, mask, outline, margin), "image/webp", filename)
