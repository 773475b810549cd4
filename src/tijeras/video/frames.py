"""Video frames, read lazily: a folder of images, a video file, a sequence of arrays, a stream.

Every source answers :meth:`FrameSource.read` with one H x W x 3 uint8 RGB frame; nothing is
decoded before it is asked for, and a source holds at most a few decoded frames, so a long video
never sits in memory. :func:`model_input` turns a frame into the model's input the way Meta's
loader does: the whole frame resized to S x S with Pillow's bicubic filter (no aspect ratio
kept, no padding), scaled to 0..1 and normalised with the ImageNet statistics.

- :class:`ImageFolder`: JPEG (or PNG) files, ordered by the integer in their names as Meta's
  loader orders ``00000.jpg``... (by name when the names are not all integers). Like Meta's
  loader it ignores EXIF orientation, so frames match the ones a model was evaluated on.
- :class:`VideoFile`: MP4, MOV, MKV, AVI, WebM... through OpenCV's FFmpeg backend; decoding is
  sequential with seeks for jumps, and a small window of frames is kept for reverse tracking.
- :class:`FrameSequence`: a list or array of frames (or any object with ``len`` and indexing,
  which may produce frames on demand).
- :class:`FrameStream`: frames pushed one at a time (a camera, a decoder), length unknown.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import FrameIndexError, VideoError

IMAGE_SUFFIXES = (".jpg", ".jpeg")
OTHER_IMAGE_SUFFIXES = (".png",)
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".ts", ".gif")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class FrameSource:
    """Frames of one video, decoded on demand.

    Attributes:
        name: what to call the video in messages (a path, or a description).
        num_frames: the number of frames, or None while unknown (a stream).
        size: (H, W) of the frames.
    """

    name: str = "video"
    num_frames: int | None = None
    size: tuple[int, int] = (0, 0)

    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` as H x W x 3 uint8 RGB."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the file handles (a closed source cannot be read again)."""

    def check_index(self, index: int) -> int:
        """``index`` as an int, or a :class:`FrameIndexError` naming the valid range."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise FrameIndexError(f"frame index must be an integer, got {index!r}")
        index = int(index)
        if index < 0 or (self.num_frames is not None and index >= self.num_frames):
            valid = "0 or more" if self.num_frames is None else f"0..{self.num_frames - 1}"
            raise FrameIndexError(
                f"frame index {index} is out of range for {self.name} (frames {valid})"
            )
        return index


def _frame_key(path: Path) -> tuple[int, Any]:
    try:
        return (0, int(path.stem))
    except ValueError:
        return (1, [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.stem)])


class ImageFolder(FrameSource):
    """The JPEG frames of a folder (PNG if it has no JPEG), in numeric name order."""

    def __init__(self, folder: str | Path) -> None:
        folder = Path(folder)
        if not folder.is_dir():
            raise VideoError(f"{str(folder)!r} is not a folder of frames")
        files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
        if not files:
            files = [p for p in folder.iterdir() if p.suffix.lower() in OTHER_IMAGE_SUFFIXES]
        if not files:
            raise VideoError(
                f"no frames in {str(folder)!r}: expected JPEG files such as 00000.jpg "
                "(or PNG files)"
            )
        self.paths = sorted(files, key=_frame_key)
        self.name = str(folder)
        self.num_frames = len(self.paths)
        first = self._decode(0)
        self.size = (first.shape[0], first.shape[1])
        self._last: tuple[int, np.ndarray] = (0, first)

    def _decode(self, index: int) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        path = self.paths[index]
        try:
            with Image.open(path) as img:
                return np.asarray(img.convert("RGB"))
        except (OSError, UnidentifiedImageError) as exc:
            raise VideoError(f"frame {index} ({path}) cannot be read: {exc}") from None

    def read(self, index: int) -> np.ndarray:
        index = self.check_index(index)
        if self._last[0] == index:
            return self._last[1]
        frame = self._decode(index)
        if frame.shape[:2] != self.size:
            raise VideoError(
                f"frame {index} ({self.paths[index]}) is {frame.shape[1]}x{frame.shape[0]}, "
                f"not {self.size[1]}x{self.size[0]} like frame 0"
            )
        self._last = (index, frame)
        return frame


class VideoFile(FrameSource):
    """A video file decoded with OpenCV (FFmpeg): sequential reads, seeks for jumps.

    Args:
        path: the file.
        window: frames kept around the last one read, so tracking in reverse seeks once per
            ``window`` frames instead of once per frame.
    """

    def __init__(self, path: str | Path, window: int = 8) -> None:
        import cv2

        path = Path(path)
        if not path.is_file():
            raise VideoError(f"video {str(path)!r} not found")
        self.name = str(path)
        self._open(cv2.VideoCapture(str(path)), repr(str(path)), window)

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "the video bytes", window: int = 8) -> VideoFile:
        """A video held in memory, decoded from a byte stream (nothing is written to disk).

        Needs OpenCV 4.11 or later (stream input), else raises ``NotImplementedError``
        (:func:`video_from_bytes` then goes through a temporary file).
        """
        import cv2

        try:
            cap = cv2.VideoCapture(io.BytesIO(data), cv2.CAP_FFMPEG, [])
        except (TypeError, cv2.error) as err:  # no overload taking a stream
            raise NotImplementedError(
                f"OpenCV {cv2.__version__} reads videos from files only (4.11 reads memory)"
            ) from err
        source = cls.__new__(cls)
        source.name = name
        source._stream = True
        source._open(cap, name, window)
        return source

    def _open(self, cap: Any, label: str, window: int) -> None:
        import cv2

        self._cap = cap
        if not self._cap.isOpened():
            raise VideoError(f"{label} cannot be read as a video")
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS)) or 0.0
        self._next = 0
        self._window = max(1, window)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        first = self._decode_next()
        if first is None:
            self._release()
            raise VideoError(f"{label} has no decodable frame")
        self.size = (first.shape[0], first.shape[1])
        self.num_frames = count if count > 0 else self._count()

    def _count(self) -> int:
        """Frames in the file, by reading to the end (when the container does not say)."""
        n = self._next
        while self._cap.grab():
            n += 1
        self._seek(0)
        return n

    def _seek(self, index: int) -> None:
        import cv2

        self._cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        self._next = index

    def _decode_next(self) -> np.ndarray | None:
        import cv2

        ok, bgr = self._cap.read()
        if not ok:
            return None
        frame = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        self._remember(self._next, frame)
        self._next += 1
        return frame

    def _remember(self, index: int, frame: np.ndarray) -> None:
        self._cache[index] = frame
        self._cache.move_to_end(index)
        while len(self._cache) > 2 * self._window:
            self._cache.popitem(last=False)

    def read(self, index: int) -> np.ndarray:
        index = self.check_index(index)
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        if index < self._next or index > self._next + self._window:
            # a jump: start early enough that the frames before it are kept too (reverse)
            self._seek(max(0, index - self._window + 1) if index < self._next else index)
        frame = None
        while self._next <= index:
            frame = self._decode_next()
            if frame is None:
                raise VideoError(
                    f"frame {index} of {self.name} cannot be decoded (the file reports "
                    f"{self.num_frames} frames)"
                )
        assert frame is not None
        return frame

    def close(self) -> None:
        self._release()
        self._cache.clear()

    def _release(self) -> None:
        if getattr(self, "_stream", False):
            # OpenCV's release() runs without the GIL and would free the Python stream it
            # reads from there (a crash): dropping the capture frees both with the GIL held.
            self._cap = _ClosedCapture()
        else:
            self._cap.release()


class _ClosedCapture:
    """What a closed in-memory video reads from: nothing."""

    def read(self) -> tuple[bool, None]:
        return False, None

    def grab(self) -> bool:
        return False

    def set(self, *_: Any) -> bool:
        return False

    def release(self) -> None:
        pass


class FrameSequence(FrameSource):
    """Frames given in memory or produced on demand: a list of H x W x 3 arrays, an
    N x H x W x 3 array, or any object with ``len()`` and ``[index]`` returning frames."""

    def __init__(self, frames: Sequence[Any], name: str = "the frames") -> None:
        if len(frames) == 0:
            raise VideoError("no frames given")
        self._frames = frames
        self.name = name
        self.num_frames = len(frames)
        first = as_rgb(frames[0], 0)
        self.size = (first.shape[0], first.shape[1])

    def read(self, index: int) -> np.ndarray:
        index = self.check_index(index)
        frame = as_rgb(self._frames[index], index)
        if frame.shape[:2] != self.size:
            raise VideoError(
                f"frame {index} is {frame.shape[1]}x{frame.shape[0]}, not "
                f"{self.size[1]}x{self.size[0]} like frame 0"
            )
        return frame


class FrameStream(FrameSource):
    """Frames pushed one at a time; only the last ``keep`` are held. Length unknown."""

    def __init__(self, keep: int = 2, name: str = "the stream") -> None:
        self.name = name
        self.num_frames = None
        self._keep = max(1, keep)
        self._frames: OrderedDict[int, np.ndarray] = OrderedDict()
        self.count = 0

    def push(self, frame: Any) -> int:
        """Append a frame; returns its index."""
        rgb = as_rgb(frame, self.count)
        if self.count == 0:
            self.size = (rgb.shape[0], rgb.shape[1])
        elif rgb.shape[:2] != self.size:
            raise VideoError(
                f"frame {self.count} is {rgb.shape[1]}x{rgb.shape[0]}, not "
                f"{self.size[1]}x{self.size[0]} like the first frame"
            )
        self._frames[self.count] = rgb
        while len(self._frames) > self._keep:
            self._frames.popitem(last=False)
        self.count += 1
        return self.count - 1

    def read(self, index: int) -> np.ndarray:
        index = self.check_index(index)
        if index not in self._frames:
            raise FrameIndexError(
                f"frame {index} of {self.name} is no longer held (a stream keeps its last "
                f"{self._keep} frames; the latest is {self.count - 1})"
            )
        return self._frames[index]


def as_rgb(frame: Any, index: int) -> np.ndarray:
    """A frame (H x W x 3 array, PIL image, 3 x H x W or H x W x 3 uint8 tensor) as H x W x 3
    uint8 RGB."""
    if hasattr(frame, "convert") and hasattr(frame, "size"):  # a PIL image
        frame = np.asarray(frame.convert("RGB"))
    elif hasattr(frame, "detach"):  # a torch tensor
        frame = frame.detach().cpu().numpy()
        if frame.ndim == 3 and frame.shape[0] == 3 and frame.shape[-1] != 3:
            frame = frame.transpose(1, 2, 0)
    arr = np.asarray(frame)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise VideoError(f"frame {index} has shape {arr.shape}; expected H x W x 3 RGB")
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and float(arr.max()) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr[:, :, :3])


def open_frames(video: Any) -> FrameSource:
    """A frame source for a folder, a video file, video bytes, frames, or a source."""
    if isinstance(video, FrameSource):
        return video
    if isinstance(video, bytes):
        return _video_bytes(video)
    if isinstance(video, (str, os.PathLike)):
        path = Path(video)
        if path.is_dir():
            return ImageFolder(path)
        if not path.exists():
            raise VideoError(f"video {str(path)!r} not found")
        if path.suffix.lower() in IMAGE_SUFFIXES + OTHER_IMAGE_SUFFIXES:
            raise VideoError(f"{str(path)!r} is an image; give a folder of frames or a video file")
        return VideoFile(path)
    if isinstance(video, np.ndarray) and video.ndim == 3:
        return FrameSequence([video])
    if hasattr(video, "__len__") and hasattr(video, "__getitem__"):
        return FrameSequence(video)
    raise VideoError(
        f"cannot read a video from {type(video).__name__}: give a folder of JPEG frames, a "
        "video file, or a sequence of frames (a live source goes to tijeras.video.VideoStream)"
    )


def video_from_bytes(
    data: bytes, name: str = "the video bytes", spill: str | None = None
) -> VideoFile:
    """Video bytes, decoded from memory (OpenCV 4.11 and later).

    An older OpenCV reads videos from files only: the bytes then go through a temporary file in
    ``spill`` (default: the temporary folder), removed as soon as the capture has opened it.
    """
    try:
        return VideoFile.from_bytes(data, name=name)
    except NotImplementedError:
        pass
    with tempfile.NamedTemporaryFile(
        prefix="tijeras-", suffix=".mp4", delete=False, dir=spill
    ) as f:
        f.write(data)
        path = f.name
    try:
        source = VideoFile(path)
    except VideoError as err:
        raise VideoError(str(err).replace(repr(path), name)) from None
    finally:
        try:
            os.unlink(path)  # the open capture keeps reading the unlinked file on POSIX
        except OSError:
            pass  # a system that cannot unlink an open file keeps it until its cleanup
    source.name = name
    return source


_video_bytes = video_from_bytes


def model_input(
    frame: np.ndarray,
    image_size: int,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Any:
    """H x W x 3 uint8 frame -> 1 x 3 x S x S float32 model input, as Meta's loader makes it.

    Pillow bicubic resize of the whole frame to S x S, ``/ 255`` (in float64, then float32),
    minus the mean, over the standard deviation.
    """
    import torch
    from PIL import Image

    resized = np.asarray(Image.fromarray(frame).resize((image_size, image_size), Image.BICUBIC))
    x = torch.from_numpy(resized / 255.0).permute(2, 0, 1).float()
    mean_t = torch.tensor(mean, dtype=torch.float32)[:, None, None]
    std_t = torch.tensor(std, dtype=torch.float32)[:, None, None]
    return ((x - mean_t) / std_t).unsqueeze(0)
