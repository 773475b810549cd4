"""GeoTIFFs: the preview the page shows, the bands it shows and their stretch, and the kept
objects as GeoJSON in the raster's CRS (``server/geo.py`` reads the rasters)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from ...geo.errors import GeoError
from .. import exports, geo, service
from ..naming import content_disposition, download_name
from ..schemas import GeoViewRequest
from ..store import ImageEntry
from .common import entry_or_404, status_json

router = APIRouter(tags=["geo"])


def _geo(entry: ImageEntry) -> geo.GeoImage:
    if entry.geo is None:
        raise HTTPException(
            409,
            f"{entry.name} is not georeferenced: GeoJSON and bands need a GeoTIFF with a CRS "
            "(the COCO file holds this image's objects)",
        )
    return entry.geo


@router.get("/images/{image_id}/preview.png")
def preview(request: Request, image_id: str) -> Response:
    """The image as the server segments it, as PNG: for a GeoTIFF, the preview of its chosen
    bands (browsers do not show TIFFs)."""
    entry = entry_or_404(request, image_id)
    return Response(
        exports.encoded(entry.pixels, compress_level=1),
        media_type="image/png",
        headers={"Cache-Control": "no-store"},
    )


@router.post("/images/{image_id}/geo/view")
async def view(request: Request, image_id: str, body: GeoViewRequest) -> dict[str, Any]:
    """Show other bands of a GeoTIFF, or stretch them otherwise: the preview is read again
    and encoded again (the georeference, masks and kept objects stay). Refused (409) while
    the image is being encoded."""
    entry = entry_or_404(request, image_id)
    current = _geo(entry)
    if entry.status in ("queued", "encoding"):
        raise HTTPException(409, f"{entry.name} is being encoded; try again when it is ready")
    side = request.app.state.settings.geo_preview_side
    stretch = None if body.stretch is None else (body.stretch[0], body.stretch[1])
    try:
        pixels, shown = await run_in_threadpool(
            geo.render, current.data, current.name, side, body.bands, stretch
        )
    except GeoError as err:
        raise HTTPException(422, str(err)) from None
    if pixels.shape != entry.pixels.shape:  # masks and objects are of the preview's size
        raise HTTPException(409, "the new preview's size differs from the old one")
    entry.encoded.clear()
    entry.predictor = None
    entry.pixels, entry.geo = pixels, shown
    entry.status, entry.progress, entry.error = "queued", 0.0, None
    backend = request.app.state.backend
    request.app.state.queue.submit(entry.id, lambda: service.encode(entry, backend))
    return status_json(request, entry)


@router.get("/images/{image_id}/objects.geojson")
def objects_geojson(request: Request, image_id: str) -> JSONResponse:
    """The kept objects of a GeoTIFF as a GeoJSON FeatureCollection in the raster's CRS
    (polygons with holes; properties ``name``, ``score``, ``area`` in CRS units squared,
    ``area_m2``, ``area_px``). A picture without a georeference is refused (409)."""
    entry = entry_or_404(request, image_id)
    shown = _geo(entry)
    try:
        collection = geo.objects_geojson(shown, exports.kept(entry))
    except GeoError as err:
        raise HTTPException(422, str(err)) from None
    filename = download_name(entry.name, None, "objects", "geojson")
    return JSONResponse(
        collection,
        media_type="application/geo+json",
        headers={"Content-Disposition": content_disposition(filename)},
    )
