"""The hover WebSocket: cursor positions in, the mask under the newest position out.

The page sends ``{"seq": n, "x": x, "y": y}`` as the mouse moves (image pixels). A reader task
keeps only the newest position; a decoder loop answers it when the previous mask is done, so
positions that went stale while the model was busy are dropped, never queued. Each answer is
``{"seq": n, "score": s, "rle": {...}, "ms": server milliseconds}`` (the RLE at hover size,
see ``service.hover_size``) or ``{"seq": n, "error": message}``; the socket stays open.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool

from ..errors import TijerasError
from . import service

CLOSE_UNKNOWN_IMAGE = 4404
CLOSE_NOT_READY = 4409


def _parse(text: str) -> tuple[int, float, float]:
    try:
        message = json.loads(text)
        seq, x, y = int(message["seq"]), float(message["x"]), float(message["y"])
    except (ValueError, KeyError, TypeError) as err:
        raise TijerasError(f'expected {{"seq": int, "x": number, "y": number}}: {err}') from err
    if not (math.isfinite(x) and math.isfinite(y)):
        raise TijerasError(f"cursor position must be finite, got ({x}, {y})")
    return seq, x, y


async def serve(websocket: WebSocket, image_id: str) -> None:
    """Run one hover connection until the page closes it."""
    app = websocket.app
    entry = app.state.store.get(image_id)
    await websocket.accept()
    if entry is None:
        await websocket.send_json({"error": f"no image with id {image_id!r}"})
        await websocket.close(CLOSE_UNKNOWN_IMAGE)
        return
    if entry.status != "ready":
        await run_in_threadpool(entry.encoded.wait, 600)
    if entry.status != "ready":
        await websocket.send_json({"error": entry.error or "the image is not encoded"})
        await websocket.close(CLOSE_NOT_READY)
        return
    latest: dict[str, Any] = {}
    wake = asyncio.Event()
    reader = asyncio.create_task(_read(websocket, latest, wake))
    try:
        await _answer(websocket, entry, latest, wake, reader)
    finally:
        reader.cancel()


async def _read(websocket: WebSocket, latest: dict[str, Any], wake: asyncio.Event) -> None:
    try:
        while True:
            latest["text"] = await websocket.receive_text()
            wake.set()
    except WebSocketDisconnect:
        latest["closed"] = True
        wake.set()


async def _answer(
    websocket: WebSocket,
    entry: Any,
    latest: dict[str, Any],
    wake: asyncio.Event,
    reader: asyncio.Task,
) -> None:
    while True:
        await wake.wait()
        wake.clear()
        if latest.get("closed") or reader.done():
            return
        text = latest.pop("text", None)
        if text is None:
            continue
        try:
            seq, x, y = _parse(text)
        except TijerasError as err:
            await websocket.send_json({"seq": None, "error": str(err)})
            continue
        started = time.perf_counter()
        try:
            # straight onto the decoding thread: no hop through the request thread pool
            answer = await asyncio.get_running_loop().run_in_executor(
                service.DECODER, service.hover, entry, x, y
            )
        except TijerasError as err:
            await websocket.send_json({"seq": seq, "error": str(err)})
            continue
        answer.update(seq=seq, ms=round((time.perf_counter() - started) * 1000, 2))
        try:
            await websocket.send_json(answer)
        except (WebSocketDisconnect, RuntimeError):
            return
