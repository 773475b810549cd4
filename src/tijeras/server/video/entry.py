"""A video held by the server: its entry (bytes, frame sources, tracker state, masks), the
store bounding how many are held, and opening uploaded bytes within the server's limits."""

from __future__ import annotations

import io
import os
import secrets
import tempfile
import threading
import time
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import numpy as np

from ...errors import TijerasError
from ...io.export import PALETTE
from ...video.errors import VideoError, VideoPromptError
from ...video.frames import FrameSource, video_from_bytes
from ..naming import image_stem
from ..settings import ServerSettings

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
    frames: FrameSource
    display: FrameSource
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
class ZipFrames:
    """The JPEG (or PNG) frames of a zip held in memory, in numeric name order, decoded one at
    a time when asked for (a :class:`~tijeras.video.frames.FrameSequence` reads them)."""

    def __init__(self, data: bytes, name: str, max_pixels: int) -> None:
        from ...video.frames import IMAGE_SUFFIXES, OTHER_IMAGE_SUFFIXES, _frame_key

        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
            infos = [i for i in self._zip.infolist() if not i.is_dir()]
        except (zipfile.BadZipFile, OSError) as err:
            raise VideoError(f"{name!r} is not a readable zip ({err})") from None
        for suffixes in (IMAGE_SUFFIXES, OTHER_IMAGE_SUFFIXES):
            chosen = [
                i
                for i in infos
                if i.filename.lower().endswith(suffixes) and "__MACOSX" not in i.filename
            ]
            if chosen:
                break
        if not chosen:
            raise VideoError(f"{name!r} holds no JPEG (or PNG) frames such as 00000.jpg")
        self._infos = sorted(chosen, key=lambda i: _frame_key(PurePath(i.filename)))
        self._max_pixels = max_pixels
        self._name = name

    def __len__(self) -> int:
        return len(self._infos)

    def __getitem__(self, index: int) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        info = self._infos[index]
        try:
            with Image.open(io.BytesIO(self._zip.read(info))) as img:
                w, h = img.size
                if w * h > self._max_pixels:
                    raise VideoLimitError(
                        f"{info.filename} in {self._name!r} is {w} x {h} = {w * h} pixels; the "
                        f"limit is {self._max_pixels}: scale the frames down"
                    )
                return np.asarray(img.convert("RGB"))
        except (OSError, UnidentifiedImageError, zipfile.BadZipFile) as err:
            raise VideoError(f"{info.filename} in {self._name!r} cannot be read ({err})") from None


def scratch_folder() -> str:
    """Where OpenCV writes what it cannot keep in memory (the MP4 encoder, and an OpenCV older
    than 4.11 reading a video): the RAM file system ``/dev/shm`` where there is one (nothing
    reaches a disk), else the temporary folder."""
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return tempfile.gettempdir()


def frame_source(data: bytes, name: str, max_pixels: int) -> FrameSource:
    """A frame source over uploaded bytes: a zip of frames, else a video file."""
    if data[:4] == b"PK\x03\x04":
        from ...video.frames import FrameSequence

        return FrameSequence(ZipFrames(data, name, max_pixels), name=repr(name))
    return video_from_bytes(data, name=repr(name), spill=scratch_folder())


def open_video(data: bytes, name: str, settings: ServerSettings) -> VideoEntry:
    """Decode the header and first frame of uploaded bytes (a video, or a zip of JPEG frames)
    and check the server's limits.

    Raises:
        VideoError: the bytes are neither a video OpenCV can read nor a zip of frames.
        VideoLimitError: too many frames, too long, or frames too large.
    """
    try:
        frames = frame_source(data, name, settings.max_video_pixels)
    except VideoLimitError:
        raise
    except VideoError as err:
        raise VideoError(
            f"{name!r} is not a video this server can read (MP4, MOV, WebM, MKV, AVI, or a zip "
            f"of JPEG frames): {err}"
        ) from None
    try:
        _check_limits(frames, name, settings)
        display = frame_source(data, name, settings.max_video_pixels)
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
        fps=float(getattr(frames, "fps", 0.0) or 0.0),
    )


def _check_limits(frames: FrameSource, name: str, settings: ServerSettings) -> None:
    n = int(frames.num_frames or 0)
    h, w = frames.size
    fps = float(getattr(frames, "fps", 0.0) or 0.0)
    if n > settings.max_video_frames:
        raise VideoLimitError(
            f"{name!r} has {n} frames; the limit is {settings.max_video_frames} "
            "(--max-video-frames): trim the clip"
        )
    if fps and n / fps > settings.max_video_seconds:
        raise VideoLimitError(
            f"{name!r} lasts {n / fps:.1f} s; the limit is "
            f"{settings.max_video_seconds:g} s (--max-video-seconds): trim the clip"
        )
    if h * w > settings.max_video_pixels:
        raise VideoLimitError(
            f"{name!r} is {w} x {h} = {w * h} pixels per frame; the limit is "
            f"{settings.max_video_pixels}: scale the video down"
        )


def check_frame(entry: VideoEntry, frame: int) -> None:
    if not 0 <= frame < entry.num_frames:
        raise VideoPromptError(
            f"frame {frame} is out of range: this video has frames 0..{entry.num_frames - 1}"
        )


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
        "palette": [list(c) for c in PALETTE],
    }
