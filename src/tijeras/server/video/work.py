"""Model work on a video: prompts on a frame, hover, and the tracking job."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ...io.rle import coco_rle
from ...video.errors import VideoPromptError
from .entry import MAX_OBJECTS, VideoBusyError, VideoEntry, check_frame, colour


def _state(entry: VideoEntry, tracker: Any) -> Any:
    if entry.state is None:
        entry.state = tracker.init_state(entry.frames)
    return entry.state


def _not_busy(entry: VideoEntry) -> None:
    if entry.tracking:
        job = entry.job
        raise VideoBusyError(
            f"the video is being tracked (frame {job.get('done', 0)} of {job.get('total', '?')}):"
            " wait for the end or stop the tracking first"
        )


def prompt(
    entry: VideoEntry,
    tracker: Any,
    frame: int,
    obj_id: int,
    points: list[list[float]] | None,
    labels: list[int] | None,
    box: list[float] | None,
    max_objects: int = MAX_OBJECTS,
) -> dict[str, Any]:
    """Set one object's prompts on one frame (replacing its earlier ones there; none clears
    them) and return every object's mask on that frame."""
    import torch

    check_frame(entry, frame)
    if not 1 <= obj_id <= MAX_OBJECTS:
        raise VideoPromptError(f"object ids go from 1 to {MAX_OBJECTS}, got {obj_id}")
    if obj_id not in entry.objects and len(entry.objects) >= max_objects:
        raise VideoPromptError(
            f"this video has {len(entry.objects)} objects, the most this server tracks in one "
            f"video (max_video_objects {max_objects}): remove one first"
        )
    _not_busy(entry)
    with entry.lock, torch.inference_mode():
        _not_busy(entry)
        state = _state(entry, tracker)
        if points is None and box is None:
            if obj_id not in state.objects:
                raise VideoPromptError(f"object {obj_id} has no prompts to clear")
            result = tracker.clear_prompts(state, frame, obj_id)
            entry.prompted.get(obj_id, set()).discard(frame)
        else:
            result = tracker.add_points(state, frame, obj_id, points, labels, box=box)
            entry.prompted.setdefault(obj_id, set()).add(frame)
            if obj_id not in entry.objects:
                entry.objects.append(obj_id)
        _store_frame(entry, result)
    return frame_masks(entry, frame)


def remove_object(entry: VideoEntry, tracker: Any, obj_id: int) -> None:
    """Forget an object: its prompts, results and masks on every frame."""
    import torch

    _not_busy(entry)
    with entry.lock, torch.inference_mode():
        if obj_id not in entry.objects:
            raise VideoPromptError(f"no object {obj_id} in this video")
        if entry.state is not None and obj_id in entry.state.objects:
            tracker.remove_object(entry.state, obj_id, need_output=False)
        entry.objects.remove(obj_id)
        entry.prompted.pop(obj_id, None)
        for masks in entry.masks.values():
            masks.pop(obj_id, None)


def _store_frame(entry: VideoEntry, result: Any) -> None:
    masks = result.masks()
    rles = coco_rle(masks)
    entry.masks[int(result.frame_idx)] = {
        int(obj_id): rle for obj_id, rle in zip(result.obj_ids, rles)
    }


def frame_masks(entry: VideoEntry, frame: int) -> dict[str, Any]:
    """Every object's mask on a frame (objects without one on it are left out)."""
    check_frame(entry, frame)
    held = entry.masks.get(frame, {})
    objects = []
    for obj_id in entry.objects:
        rle = held.get(obj_id)
        if rle is not None:
            objects.append({"id": obj_id, "colour": colour(obj_id), "rle": rle})
    prompted = sorted(o for o, frames in entry.prompted.items() if frame in frames)
    return {"frame": frame, "objects": objects, "prompted": prompted}


def hover(entry: VideoEntry, tracker: Any, frame: int, x: float, y: float) -> dict[str, Any]:
    """The mask one foreground click at (x, y) would give on a frame, without memory and
    without changing anything (at the frame's size, as a compressed RLE)."""
    import torch
    import torch.nn.functional as F

    from ...video.prompts import point_prompt

    check_frame(entry, frame)
    if entry.tracking or not entry.lock.acquire(timeout=0.5):
        raise VideoBusyError("the video is being tracked; hover resumes after it")
    try:
        with torch.inference_mode():
            state = _state(entry, tracker)
            tracking = tracker.tracking
            features = tracker.features(state, frame)
            given = point_prompt(state, frame, [[x, y]], [1], None, True, tracking.image_size)
            pix = tracking.without_memory(features, 1)
            heads = tracking.decode(
                pix,
                features,
                (given.coords, given.labels),
                None,
                tracking.use_multimask(True, 1),
            )
            logits = F.interpolate(
                heads.low_res.float(), (entry.height, entry.width), mode="bilinear"
            )
            mask = (logits[0, 0] > 0).cpu().numpy()
    finally:
        entry.lock.release()
    return {"rle": coco_rle(mask[None])[0], "score": float(heads.object_scores[0, 0])}


# ------------------------------------------------------------------------------- tracking
def start_tracking(
    entry: VideoEntry, submit: Callable[[Callable[[], None]], None], tracker: Any, reverse: bool
) -> dict[str, Any]:
    """Queue a propagation from the prompted frames (forward from the earliest, or backward
    from the latest with ``reverse``)."""
    if entry.tracking:
        return dict(entry.job)
    frames = sorted({f for fs in entry.prompted.values() for f in fs})
    if not frames:
        raise VideoPromptError("no prompts yet: click or box an object on a frame first")
    bare = [o for o in entry.objects if not entry.prompted.get(o)]
    if bare:
        raise VideoPromptError(
            f"object {bare[0]} has no prompt on any frame: click it on a frame, or remove it"
        )
    start = frames[-1] if reverse else frames[0]
    total = start + 1 if reverse else entry.num_frames - start
    entry.stop.clear()
    entry.job = {
        "status": "queued",
        "done": 0,
        "total": total,
        "start": start,
        "reverse": reverse,
        "fps": 0.0,
        "error": None,
    }
    submit(lambda: _track(entry, tracker, start, reverse))
    return dict(entry.job)


def _track(entry: VideoEntry, tracker: Any, start: int, reverse: bool) -> None:
    import torch

    job = entry.job
    try:
        with entry.lock, torch.inference_mode():
            if entry.stop.is_set() or entry.state is None:
                job.update(status="stopped")
                return
            job.update(status="running")
            began = time.perf_counter()
            for result in tracker.propagate(entry.state, start, reverse=reverse):
                _store_frame(entry, result)
                seconds = time.perf_counter() - began
                job.update(done=job["done"] + 1, fps=round(job["done"] / max(seconds, 1e-9), 2))
                if entry.stop.is_set():
                    job.update(status="stopped")
                    return
            job.update(status="done", seconds=round(time.perf_counter() - began, 3))
    except Exception as err:  # noqa: BLE001 (reported to the page; the server keeps running)
        job.update(status="failed", error=f"tracking failed: {err}")


def stop_tracking(entry: VideoEntry) -> dict[str, Any]:
    if entry.tracking:
        entry.stop.set()
        if entry.job.get("status") == "queued":
            entry.job["status"] = "stopped"
    return dict(entry.job)
