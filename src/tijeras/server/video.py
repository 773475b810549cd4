"""Videos in the web app: held in memory, prompted on any frame, tracked with SAM 2.

A video is its uploaded bytes and what derives from them: two frame sources decoding those
bytes lazily from memory (one for the tracker, one for the frames the page shows, so scrubbing
never waits for a propagation), the tracker's :class:`~tijeras.video.state.VideoState`, and
every frame's masks as compressed COCO RLEs. Nothing touches the disk, except the overlay MP4:
OpenCV's encoder writes only to a path, so it is encoded into a file of the RAM file system
(``/dev/shm``), read back and removed at once (see :func:`scratch_folder`).

Model work on a video (prompts, hover, the propagation) holds the video's ``lock``; a
propagation runs on the heavy queue, reports frames done and frames per second, and can be
stopped. Videos are bounded in number (``max_videos``; a new one is refused, never evicting
another's work), in upload size, frames, duration and pixels, and forgotten after ``ttl``
seconds without a request or when closed.
"""

from __future__ import annotations

import io
import os
import secrets
import tempfile
import threading
import time
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import TijerasError
from ..io.export import PALETTE
from ..io.rle import coco_rle
from ..video.errors import VideoError, VideoPromptError
from ..video.frames import VideoFile
from .naming import image_stem
from .settings import ServerSettings

MAX_OBJECTS = 255  # object ids are the labels of the palette PNGs


class VideoLimitError(TijerasError):
    """A video over one of the server's limits (the message names the limit)."""


class VideoBusyError(TijerasError):
    """The video is being tracked; prompts wait until the propagation ends or is stopped."""


class VideoModelError(TijerasError):
    """No SAM 2 model can be loaded for video tracking."""


@dataclass
class VideoEntry:
    """One uploaded video and everything derived from it.

    ``masks[frame][obj_id]`` is the object's mask on the frame (a compressed RLE), from a
    prompt or a propagation; ``prompted[obj_id]`` the frames where the object has prompts.
    ``job`` describes the latest propagation: ``status`` ``none``, ``queued``, ``running``,
    ``done``, ``stopped`` or ``failed``, with ``done`` / ``total`` frames and ``fps``.
    """

    id: str
    name: str
    data: bytes
    frames: VideoFile
    display: VideoFile
    num_frames: int
    height: int
    width: int
    fps: float
    state: Any = None
    objects: list[int] = field(default_factory=list)
    masks: dict[int, dict[int, dict[str, Any]]] = field(default_factory=dict)
    prompted: dict[int, set[int]] = field(default_factory=dict)
    job: dict[str, Any] = field(default_factory=lambda: {"status": "none"})
    stop: threading.Event = field(default_factory=threading.Event, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    display_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    touched: float = field(default_factory=time.monotonic)

    @property
    def stem(self) -> str:
        return image_stem(self.name) if self.name else "video"

    @property
    def tracking(self) -> bool:
        return self.job.get("status") in ("queued", "running")

    def close(self) -> None:
        self.frames.close()
        self.display.close()


def colour(obj_id: int) -> list[int]:
    """The RGB colour of an object (the one the overlay MP4 draws it in)."""
    return list(PALETTE[(obj_id - 1) % len(PALETTE)])


# -------------------------------------------------------------------------------- the store
class VideoStore:
    """Videos by id, at most ``max_videos``, each forgotten after ``ttl`` idle seconds."""

    def __init__(self, max_videos: int = 2, ttl: float = 3600.0) -> None:
        self.max_videos = max_videos
        self.ttl = ttl
        self._videos: OrderedDict[str, VideoEntry] = OrderedDict()
        self._lock = threading.Lock()

    def check_room(self) -> None:
        with self._lock:
            self._expire()
            if len(self._videos) >= self.max_videos:
                raise VideoLimitError(
                    f"{len(self._videos)} video(s) are open, the most this server holds "
                    f"(--max-videos {self.max_videos}): close one first"
                )

    def add(self, entry: VideoEntry) -> None:
        self.check_room()
        with self._lock:
            self._videos[entry.id] = entry

    def get(self, video_id: str) -> VideoEntry | None:
        with self._lock:
            self._expire()
            entry = self._videos.get(video_id)
            if entry is not None:
                entry.touched = time.monotonic()
            return entry

    def remove(self, video_id: str) -> bool:
        with self._lock:
            entry = self._videos.pop(video_id, None)
        if entry is None:
            return False
        entry.stop.set()
        _close_when_free(entry)
        return True

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._videos)

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, e in self._videos.items() if now - e.touched > self.ttl]:
            entry = self._videos.pop(key)
            entry.stop.set()
            _close_when_free(entry)


def _close_when_free(entry: VideoEntry) -> None:
    """Release a forgotten video's decoders once no model work uses them."""

    def close() -> None:
        with entry.lock, entry.display_lock:
            entry.close()
            entry.state = None

    threading.Thread(target=close, name="tijeras-video-close", daemon=True).start()


# ------------------------------------------------------------------------------- opening
def open_video(data: bytes, name: str, settings: ServerSettings) -> VideoEntry:
    """Decode the header and first frame of uploaded bytes and check the server's limits.

    Raises:
        VideoError: the bytes are not a video OpenCV can read.
        VideoLimitError: too many frames, too long, or frames too large.
    """
    try:
        frames = VideoFile.from_bytes(data, name=repr(name))
    except VideoError as err:
        raise VideoError(
            f"{name!r} is not a video this server can read (MP4, MOV, WebM, MKV, AVI): {err}"
        ) from None
    try:
        _check_limits(frames, name, settings)
        display = VideoFile.from_bytes(data, name=repr(name))
    except BaseException:
        frames.close()
        raise
    h, w = frames.size
    return VideoEntry(
        id=secrets.token_urlsafe(16),
        name=name,
        data=data,
        frames=frames,
        display=display,
        num_frames=int(frames.num_frames or 0),
        height=h,
        width=w,
        fps=float(frames.fps or 0.0),
    )


def _check_limits(frames: VideoFile, name: str, settings: ServerSettings) -> None:
    n = int(frames.num_frames or 0)
    h, w = frames.size
    if n > settings.max_video_frames:
        raise VideoLimitError(
            f"{name!r} has {n} frames; the limit is {settings.max_video_frames} "
            "(--max-video-frames): trim the clip"
        )
    if frames.fps and n / frames.fps > settings.max_video_seconds:
        raise VideoLimitError(
            f"{name!r} lasts {n / frames.fps:.1f} s; the limit is "
            f"{settings.max_video_seconds:g} s (--max-video-seconds): trim the clip"
        )
    if h * w > settings.max_video_pixels:
        raise VideoLimitError(
            f"{name!r} is {w} x {h} = {w * h} pixels per frame; the limit is "
            f"{settings.max_video_pixels}: scale the video down"
        )


# --------------------------------------------------------------------------------- model
class VideoModels:
    """The SAM 2 tracker of the server, loaded on first use.

    The server's own model when it is a SAM 2 model, else ``settings.video_model`` (from
    ``settings.video_checkpoint``, the weights cache, or a download when allowed). A model that
    cannot be had is a :class:`VideoModelError` saying how to add it.
    """

    def __init__(
        self, settings: ServerSettings, model: Any = None, main: Any = None, main_name: str = ""
    ) -> None:
        self.settings = settings
        self._model = model
        self._main = main
        self._main_name = main_name
        self._tracker: Any = None
        self._error: str | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        from ..models.sam2.model import Sam2Model

        if self._model is not None:
            return str(getattr(self._model, "name", None) or self.settings.video_model)
        if isinstance(self._main, Sam2Model):
            return self._main_name or "the server's SAM 2 model"
        return self.settings.video_model

    def tracker(self) -> Any:
        with self._lock:
            if self._tracker is None:
                if self._error is not None:
                    raise VideoModelError(self._error)
                try:
                    self._tracker = self._load()
                except TijerasError as err:
                    self._error = str(err)
                    raise VideoModelError(self._error) from None
            return self._tracker

    def _load(self) -> Any:
        from ..models.sam2.model import Sam2Model
        from ..models.sam2.video_config import tracking_config
        from ..video.tracker import VideoTracker

        model = self._model
        if model is None and isinstance(self._main, Sam2Model):
            model = self._main
        if model is None:
            model = _load_video_model(self.settings)
        return VideoTracker(model, tracking_config(model.config))


def _load_video_model(settings: ServerSettings) -> Any:
    import torch

    from ..api import load_model
    from ..catalog import get_spec
    from ..hub.download import cached_checkpoint, download
    from ..models.sam2.model import Sam2Model

    name = settings.video_model
    spec = get_spec(name)
    if spec.family != "sam2":
        raise TijerasError(f"--video-model {name}: video tracking needs a SAM 2 model")
    found: Any = settings.video_checkpoint
    if found is None and spec.checkpoint is not None:
        found = cached_checkpoint(spec.name, settings.cache)
        if found is None and settings.download:
            try:
                found = download(spec.name, settings.cache, timeout=settings.download_timeout)
            except TijerasError as err:
                raise TijerasError(
                    f"video tracking needs the weights of {spec.name}, which could not be "
                    f"downloaded ({err}); run `tijeras download {spec.name}` on a machine "
                    "with internet access, or start the server with --video-checkpoint PATH"
                ) from None
        if found is None:
            raise TijerasError(
                f"video tracking needs the weights of {spec.name}: run `tijeras download "
                f"{spec.name}`, or start the server with --video-checkpoint PATH"
            )
    if found is None:
        torch.manual_seed(0)  # random-weight test models: the same model on every start
    model = load_model(spec.name, found, device=settings.device, dtype=settings.dtype)
    if not isinstance(model, Sam2Model):
        raise TijerasError(f"--video-model {name}: video tracking needs a SAM 2 model")
    return model


# -------------------------------------------------------------------------------- prompts
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
) -> dict[str, Any]:
    """Set one object's prompts on one frame (replacing its earlier ones there; none clears
    them) and return every object's mask on that frame."""
    import torch

    _check_frame(entry, frame)
    if not 1 <= obj_id <= MAX_OBJECTS:
        raise VideoPromptError(f"object ids go from 1 to {MAX_OBJECTS}, got {obj_id}")
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


def _check_frame(entry: VideoEntry, frame: int) -> None:
    if not 0 <= frame < entry.num_frames:
        raise VideoPromptError(
            f"frame {frame} is out of range: this video has frames 0..{entry.num_frames - 1}"
        )


def frame_masks(entry: VideoEntry, frame: int) -> dict[str, Any]:
    """Every object's mask on a frame (objects without one on it are left out)."""
    _check_frame(entry, frame)
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

    from ..video.prompts import point_prompt

    _check_frame(entry, frame)
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
    except Exception as err:  # reported to the page; the server keeps running
        job.update(status="failed", error=f"tracking failed: {err}")


def stop_tracking(entry: VideoEntry) -> dict[str, Any]:
    if entry.tracking:
        entry.stop.set()
        if entry.job.get("status") == "queued":
            entry.job["status"] = "stopped"
    return dict(entry.job)


# ------------------------------------------------------------------------------- frames
def frame_jpeg(entry: VideoEntry, frame: int, quality: int = 90) -> bytes:
    """Frame ``frame`` as JPEG bytes (decoded from the video in memory)."""
    import cv2

    _check_frame(entry, frame)
    with entry.display_lock:
        rgb = entry.display.read(frame)
    ok, data = cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise VideoError(f"frame {frame} could not be encoded as JPEG")
    return data.tobytes()


def _masks_array(
    entry: VideoEntry, held: dict[int, dict[str, Any]], objects: list[int]
) -> np.ndarray:
    """B x H x W bool masks of ``objects`` from one frame's RLEs (empty where none)."""
    from pycocotools import mask as mask_utils

    out = np.zeros((len(objects), entry.height, entry.width), bool)
    for i, obj_id in enumerate(objects):
        rle = held.get(obj_id)
        if rle is not None:
            out[i] = mask_utils.decode({**rle, "counts": rle["counts"].encode()}).astype(bool)
    return out


def _snapshot(entry: VideoEntry) -> tuple[list[int], dict[int, dict[int, dict[str, Any]]]]:
    """The objects and masks as they are now (a running propagation keeps adding frames)."""
    return list(entry.objects), dict(list(entry.masks.items()))


# ------------------------------------------------------------------------------- downloads
def scratch_folder() -> str:
    """Where OpenCV's MP4 encoder writes: the RAM file system ``/dev/shm`` where there is
    one (nothing reaches a disk), else the temporary folder."""
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return tempfile.gettempdir()


def overlay_mp4(entry: VideoEntry) -> bytes:
    """The video with every object drawn over it (``mp4v``, the source's frame rate)."""
    from ..video.export import OverlayWriter

    objects, masks = _snapshot(entry)
    path = os.path.join(scratch_folder(), f"tijeras-{secrets.token_hex(8)}.mp4")
    frames = VideoFile.from_bytes(entry.data, name=repr(entry.name))
    try:
        writer = OverlayWriter(path, (entry.height, entry.width), entry.fps or 24.0)
        try:
            for index in range(entry.num_frames):
                drawn = _masks_array(entry, masks.get(index, {}), objects)
                writer.write(frames.read(index), drawn, objects)
        finally:
            writer.close()
        with open(path, "rb") as f:
            return f.read()
    finally:
        frames.close()
        for leftover in (path, path[: -len(".mp4")] + ".part.mp4"):
            try:
                os.unlink(leftover)
            except FileNotFoundError:
                pass


def masklets_json(entry: VideoEntry) -> bytes:
    """SA-V style masklets of the frames that have masks (COCO RLEs per frame and object)."""
    from ..video.export import MaskletWriter

    objects, masks = _snapshot(entry)
    text = io.StringIO()
    writer = MaskletWriter(
        text, entry.stem, (entry.height, entry.width), objects, num_frames=entry.num_frames
    )
    for frame in sorted(masks):
        writer.write(frame, _masks_array(entry, masks[frame], objects))
    writer.close()
    return text.getvalue().encode()


def palette_zip(entry: VideoEntry) -> bytes:
    """A zip of one palette PNG per frame (``<video>/00000.png``...), pixel = object id."""
    from PIL import Image

    from ..video.export import davis_palette, label_image

    objects, masks = _snapshot(entry)
    palette = davis_palette()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for frame in range(entry.num_frames):
            labels = label_image(_masks_array(entry, masks.get(frame, {}), objects), objects)
            image = Image.fromarray(labels, mode="P")
            image.putpalette(palette)
            png = io.BytesIO()
            image.save(png, format="PNG")
            archive.writestr(f"{entry.stem}/{frame:05d}.png", png.getvalue())
    return out.getvalue()


# -------------------------------------------------------------------------------- answers
def describe(entry: VideoEntry, model: str) -> dict[str, Any]:
    """A video as the API returns it."""
    return {
        "id": entry.id,
        "name": entry.name,
        "width": entry.width,
        "height": entry.height,
        "num_frames": entry.num_frames,
        "fps": round(entry.fps, 3),
        "duration": round(entry.num_frames / entry.fps, 3) if entry.fps else None,
        "model": model,
        "objects": [
            {"id": o, "colour": colour(o), "frames": sorted(entry.prompted.get(o, ()))}
            for o in entry.objects
        ],
        "masked_frames": len(entry.masks),
        "track": dict(entry.job),
    }
