"""Video tracking with SAM 2: frame sources, the typed video state, the tracker and the
streaming API (Meta's predictor API is :mod:`tijeras.sam2.video_predictor`).

    frames.py    lazy frame sources: JPEG folders, video files (OpenCV), sequences, streams
    state.py     VideoState, ObjectTrack, FrameResult: the state of one video, outside the model
    tracker.py   VideoTracker: prompts, propagation, batched objects, bounded memory
    prompts.py   point and box prompts checked and scaled to the model input
    stream.py    VideoStream: frames pushed one at a time, masks returned per frame
    export.py    palette PNGs (DAVIS), SA-V style JSON, overlay MP4, written frame by frame
    errors.py    the errors a user can cause
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "FrameMasks",
    "ObjectPrompt",
    "VideoState",
    "VideoStream",
    "VideoTracker",
    "capture_frames",
    "open_frames",
]

_EXPORTS = {
    "FrameMasks": ".tracker",
    "VideoTracker": ".tracker",
    "VideoState": ".state",
    "ObjectPrompt": ".stream",
    "VideoStream": ".stream",
    "capture_frames": ".stream",
    "open_frames": ".frames",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
