"""Videos: upload, frames, prompts on any frame, hover, tracking with progress, files.

Every video endpoint answers a mistake with a 4xx naming it: a file that is not a video (415),
one over a limit (413, naming the limit), a frame out of range or a point outside the frame
(422), a prompt while the video is being tracked (409), no SAM 2 model to track with (503).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, Field, field_validator

from ...errors import PromptError, TijerasError
from ...video.errors import FrameIndexError, VideoError
from .. import video
from ..naming import content_disposition
from .common import read_body

router = APIRouter(tags=["videos"])


class VideoPrompt(BaseModel):
    """One object's prompts on one frame; they replace the object's earlier ones there (no
    points and no box clears them)."""

    frame: int = Field(0, ge=0, description="the frame index", examples=[0])
    object: int = Field(1, ge=1, le=video.MAX_OBJECTS, description="the object id (1..255)")
    points: list[list[float]] | None = Field(
        None, description="N x 2 xy points in frame pixels", examples=[[[100, 80]]]
    )
    labels: list[int] | None = Field(
        None, description="N labels: 1 foreground, 0 background", examples=[[1]]
    )
    box: list[float] | None = Field(
        None,
        description="x0, y0, x1, y1 in frame pixels",
        json_schema_extra={"minItems": 4, "maxItems": 4},
    )

    @field_validator("points")
    @classmethod
    def _points(cls, points: list[list[float]] | None) -> list[list[float]] | None:
        for point in points or []:
            if len(point) != 2 or not all(math.isfinite(v) for v in point):
                raise ValueError(f"each point must be [x, y] with finite numbers, got {point}")
        return points or None

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: list[int] | None) -> list[int] | None:
        for label in labels or []:
            if label not in (0, 1):
                raise ValueError(f"labels are 1 (foreground) or 0 (background), got {label}")
        return labels or None

    @field_validator("box")
    @classmethod
    def _box(cls, box: list[float] | None) -> list[float] | None:
        if box is not None and (len(box) != 4 or not all(math.isfinite(v) for v in box)):
            raise ValueError(f"a box is 4 finite numbers x0, y0, x1, y1, got {box}")
        return box


class TrackRequest(BaseModel):
    """Which way to propagate."""

    reverse: bool = Field(
        False, description="backward from the latest prompted frame (else forward from the first)"
    )


@contextmanager
def _answers() -> Iterator[None]:
    """The video errors as HTTP answers."""
    try:
        yield
    except video.VideoLimitError as err:
        raise HTTPException(413, str(err)) from None
    except video.VideoBusyError as err:
        raise HTTPException(409, str(err)) from None
    except video.VideoModelError as err:
        raise HTTPException(503, str(err)) from None
    except (PromptError, FrameIndexError) as err:
        raise HTTPException(422, str(err)) from None
    except VideoError as err:
        raise HTTPException(415, str(err)) from None
    except TijerasError as err:
        raise HTTPException(400, str(err)) from None


def _entry(request: Request, video_id: str) -> video.VideoEntry:
    entry = request.app.state.videos.get(video_id)
    if entry is None:
        raise HTTPException(
            404, f"no video with id {video_id!r} (never uploaded, closed or expired)"
        )
    return entry


def _tracker(request: Request) -> Any:
    with _answers():
        return request.app.state.video_models.tracker()


def _describe(request: Request, entry: video.VideoEntry) -> dict[str, Any]:
    return video.describe(entry, request.app.state.video_models.name)


def _file(data: bytes, media_type: str, filename: str) -> Response:
    return Response(
        data,
        media_type=media_type,
        headers={"Content-Disposition": content_disposition(filename), "Cache-Control": "no-store"},
    )


@router.post("/videos", status_code=201)
async def upload(request: Request) -> dict[str, Any]:
    """Upload a video (MP4, MOV, WebM, MKV, AVI) as the raw request body; ``X-Filename`` names
    it (percent-encoded UTF-8).

    The video is held in memory only and its frames are decoded when asked for. A file that is
    not a video (415), or over the server's limits of size, frames, duration or frame pixels
    (413, naming the limit), or arriving while ``max_videos`` are open (409), is refused and
    changes nothing. The SAM 2 model is loaded with the first video (503 when it cannot be).
    """
    settings = request.app.state.settings
    store: video.VideoStore = request.app.state.videos
    name = unquote(request.headers.get("x-filename", "video"))[:200] or "video"
    try:
        store.check_room()
    except video.VideoLimitError as err:
        raise HTTPException(409, str(err)) from None
    data = await read_body(request, settings.max_video_bytes)
    with _answers():
        entry = await run_in_threadpool(video.open_video, data, name, settings)
    try:
        await run_in_threadpool(_tracker, request)
        store.add(entry)
    except HTTPException:
        entry.close()
        raise
    except video.VideoLimitError as err:
        entry.close()
        raise HTTPException(409, str(err)) from None
    return _describe(request, entry)


@router.get("/videos/{video_id}")
def status(request: Request, video_id: str) -> dict[str, Any]:
    """Size, frames, frame rate, objects (with their colours and prompted frames) and the
    state of the latest tracking."""
    return _describe(request, _entry(request, video_id))


@router.delete("/videos/{video_id}")
def delete(request: Request, video_id: str) -> dict[str, Any]:
    """Close a video: its bytes, frames, memories and masks are freed (a tracking stops)."""
    if not request.app.state.videos.remove(video_id):
        raise HTTPException(404, f"no video with id {video_id!r}")
    return {"deleted": video_id}


@router.get("/videos/{video_id}/frames/{frame}.jpg")
def frame_jpeg(request: Request, video_id: str, frame: int) -> Response:
    """One frame as a JPEG."""
    entry = _entry(request, video_id)
    with _answers():
        data = video.frame_jpeg(entry, frame)
    return Response(
        data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"}
    )


@router.get("/videos/{video_id}/frames/{frame}/masks")
def frame_masks(request: Request, video_id: str, frame: int) -> dict[str, Any]:
    """Every object's mask on a frame (compressed COCO RLEs with the objects' colours) and
    which objects are prompted there."""
    entry = _entry(request, video_id)
    with _answers():
        return video.frame_masks(entry, frame)


@router.post("/videos/{video_id}/prompts")
def prompt(request: Request, video_id: str, body: VideoPrompt) -> dict[str, Any]:
    """Set an object's points and/or box on a frame; the answer is every object's mask on
    that frame. On a tracked frame this corrects the object there; track again to carry the
    correction to the later frames."""
    entry = _entry(request, video_id)
    if (body.points is None) != (body.labels is None):
        raise HTTPException(422, "points and labels go together: one label per point")
    if body.points is not None and body.labels is not None and len(body.points) != len(body.labels):
        raise HTTPException(422, f"{len(body.points)} points but {len(body.labels)} labels")
    tracker = _tracker(request)
    with _answers():
        return video.prompt(
            entry,
            tracker,
            body.frame,
            body.object,
            body.points,
            body.labels,
            body.box,
            request.app.state.settings.max_video_objects,
        )


@router.delete("/videos/{video_id}/objects/{obj_id}")
def remove_object(request: Request, video_id: str, obj_id: int) -> dict[str, Any]:
    """Forget an object on every frame."""
    entry = _entry(request, video_id)
    tracker = _tracker(request)
    with _answers():
        video.remove_object(entry, tracker, obj_id)
    return _describe(request, entry)


@router.post("/videos/{video_id}/track", status_code=202)
def track(request: Request, video_id: str, body: TrackRequest) -> dict[str, Any]:
    """Propagate every object from the prompted frames, in the background; ``GET`` on the same
    path reports frames done, the total and frames per second. Tracking again after a
    correction recomputes the frames after the first prompted one."""
    entry = _entry(request, video_id)
    tracker = _tracker(request)
    queue = request.app.state.queue
    with _answers():
        return video.start_tracking(
            entry, lambda job: queue.submit(entry.id, job), tracker, body.reverse
        )


@router.get("/videos/{video_id}/track")
def track_status(request: Request, video_id: str) -> dict[str, Any]:
    """The latest tracking: ``status`` (none, queued, running, done, stopped, failed),
    ``done`` and ``total`` frames, ``fps``, ``error``."""
    return dict(_entry(request, video_id).job)


@router.delete("/videos/{video_id}/track")
def stop(request: Request, video_id: str) -> dict[str, Any]:
    """Stop a tracking; the frames tracked so far keep their masks."""
    return video.stop_tracking(_entry(request, video_id))


@router.get("/videos/{video_id}/overlay.mp4")
def overlay(request: Request, video_id: str) -> Response:
    """The video with every object drawn over it, as an MP4 (``mp4v``)."""
    entry = _entry(request, video_id)
    with _answers():
        data = video.overlay_mp4(entry)
    return _file(data, "video/mp4", f"{entry.stem}-overlay.mp4")


@router.get("/videos/{video_id}/masks.json")
def masklets(request: Request, video_id: str) -> Response:
    """The masks as SA-V style masklets: per frame with masks, per object, a COCO RLE."""
    entry = _entry(request, video_id)
    with _answers():
        data = video.masklets_json(entry)
    return _file(data, "application/json", f"{entry.stem}-masks.json")


@router.get("/videos/{video_id}/masks.zip")
def palette_pngs(request: Request, video_id: str) -> Response:
    """The masks as one palette PNG per frame (DAVIS layout: pixel value = object id)."""
    entry = _entry(request, video_id)
    with _answers():
        data = video.palette_zip(entry)
    return _file(data, "application/zip", f"{entry.stem}-masks.zip")


@router.websocket("/videos/{video_id}/hover")
async def hover(websocket: WebSocket, video_id: str) -> None:
    """Stream ``{"seq", "frame", "x", "y"}``; receive the mask a click there would give
    (``{"seq", "frame", "rle", "score", "ms"}`` or ``{"seq", "error"}``), newest position only."""
    await websocket.accept()
    entry = websocket.app.state.videos.get(video_id)
    if entry is None:
        await websocket.send_json({"error": f"no video with id {video_id!r}"})
        await websocket.close(4404)
        return
    try:
        tracker = websocket.app.state.video_models.tracker()
    except TijerasError as err:
        await websocket.send_json({"error": str(err)})
        await websocket.close(4409)
        return
    latest: dict[str, Any] = {}
    wake = asyncio.Event()

    async def read() -> None:
        try:
            while True:
                latest["text"] = await websocket.receive_text()
                wake.set()
        except WebSocketDisconnect:
            latest["closed"] = True
            wake.set()

    reader = asyncio.create_task(read())
    try:
        while True:
            await wake.wait()
            wake.clear()
            if latest.get("closed") or reader.done():
                return
            text = latest.pop("text", None)
            if text is None:
                continue
            answer = await run_in_threadpool(_hover_answer, entry, tracker, text)
            try:
                await websocket.send_json(answer)
            except (WebSocketDisconnect, RuntimeError):
                return
    finally:
        reader.cancel()


def _hover_answer(entry: video.VideoEntry, tracker: Any, text: str) -> dict[str, Any]:
    seq = None
    try:
        message = json.loads(text)
        seq = message.get("seq") if isinstance(message, dict) else None
        frame, x, y = int(message["frame"]), float(message["x"]), float(message["y"])
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        return {"seq": seq, "error": f'expected {{"seq", "frame", "x", "y"}}: {err}'}
    started = time.perf_counter()
    try:
        answer = video.hover(entry, tracker, frame, x, y)
    except TijerasError as err:
        return {"seq": seq, "error": str(err)}
    answer.update(seq=seq, frame=frame, ms=round((time.perf_counter() - started) * 1000, 2))
    return answer
