"""Writing tracked masks as files, one frame at a time (nothing accumulates in memory).

- :class:`PaletteWriter`: one palette PNG per frame holding every object (pixel value = the
  object's label, 0 background), the layout of DAVIS ``Annotations/<video>/<frame>.png`` and of
  Meta's ``tools/vos_inference.py``; where objects overlap the lowest label wins, as there.
- :class:`MaskletWriter`: one JSON per video in the SA-V annotation style: ``masklet`` is a
  list over frames of lists over objects of compressed COCO RLEs, with the per-object
  statistics SA-V files carry (size, first appearance, visibility changes).
- :class:`OverlayWriter`: an MP4 of the frames with every object drawn over them.

Labels: objects whose ids are ints 1..255 keep them as labels; otherwise objects get 1, 2, ...
in the order they were added.
"""

from __future__ import annotations

import json
import os
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..io.export import PALETTE
from ..io.rle import coco_rle
from .errors import VideoError


def davis_palette() -> list[int]:
    """The 256-colour palette of DAVIS annotations (the PASCAL VOC colour map), flat RGB."""
    out = []
    for label in range(256):
        r = g = b = 0
        c = label
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        out += [r, g, b]
    return out


def object_labels(obj_ids: Sequence[Hashable]) -> dict[Hashable, int]:
    """The PNG label of each object (its id when all ids are ints 1..255)."""
    if all(isinstance(i, int) and not isinstance(i, bool) and 1 <= i <= 255 for i in obj_ids):
        return {i: int(i) for i in obj_ids}  # type: ignore[arg-type]
    if len(obj_ids) > 255:
        raise VideoError(f"{len(obj_ids)} objects do not fit in an 8-bit label image")
    return {obj_id: n + 1 for n, obj_id in enumerate(obj_ids)}


def label_image(masks: np.ndarray, labels: Sequence[int]) -> np.ndarray:
    """B x H x W bool masks -> H x W uint8 labels (the lowest label wins on overlaps)."""
    out = np.zeros(masks.shape[1:], np.uint8)
    for i in sorted(range(len(labels)), key=lambda i: labels[i], reverse=True):
        out[masks[i]] = labels[i]
    return out


class PaletteWriter:
    """``folder/<frame name>.png`` per frame: palette PNGs of object labels."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.palette = davis_palette()

    def write(self, name: str, labels: np.ndarray) -> Path:
        from PIL import Image

        path = self.folder / f"{name}.png"
        image = Image.fromarray(labels, mode="P")
        image.putpalette(self.palette)
        tmp = path.with_name(path.name + ".part")
        image.save(tmp, format="PNG")
        os.replace(tmp, path)
        return path


class MaskletWriter:
    """One SA-V style JSON per video, written as frames arrive.

    Args:
        path: the JSON file, or an open text stream to write it to (left open).
        video_id: its ``video_id``.
        size: (H, W) of the frames.
        obj_ids: the objects (their order in every frame's list).
        num_frames: frames in the video (``video_frame_count``), if known.
    """

    def __init__(
        self,
        path: str | Path | TextIO,
        video_id: str,
        size: tuple[int, int],
        obj_ids: Sequence[Hashable],
        num_frames: int | None = None,
    ) -> None:
        self._stream = not isinstance(path, (str, os.PathLike))
        self._file: TextIO | None
        if self._stream:
            self.path = Path(str(getattr(path, "name", video_id)))
            self._file = path  # type: ignore[assignment]
        else:
            self.path = Path(path)  # type: ignore[arg-type]
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._tmp = self.path.with_name(self.path.name + ".part")
            # kept open while frames arrive; close() finishes and renames it
            self._file = open(self._tmp, "w", encoding="utf-8")  # noqa: SIM115
        self.size = size
        self.obj_ids = list(obj_ids)
        self.frames: list[int] = []
        n = len(self.obj_ids)
        self._area = np.zeros(n)
        self._visible_frames = np.zeros(n, int)
        self._first = [-1] * n
        self._last_visible: list[bool | None] = [None] * n
        self._changes = [0] * n
        h, w = size
        head = {
            "video_id": video_id,
            "video_frame_count": num_frames,
            "video_height": h,
            "video_width": w,
            "video_resolution": h * w,
            "masklet_id": [_plain_id(i) for i in self.obj_ids],
            "masklet_num": n,
        }
        self._file.write(json.dumps(head)[:-1] + ', "masklet": [')

    def write(self, frame_idx: int, masks: np.ndarray) -> None:
        """One frame's B x H x W bool masks (rows in ``obj_ids`` order)."""
        assert self._file is not None
        rles = coco_rle(masks)
        sep = "," if self.frames else ""
        self._file.write(sep + json.dumps(rles))
        self.frames.append(int(frame_idx))
        areas = masks.reshape(masks.shape[0], -1).sum(axis=1)
        for i, area in enumerate(areas):
            visible = bool(area > 0)
            if visible:
                self._area[i] += area
                self._visible_frames[i] += 1
                if self._first[i] < 0:
                    self._first[i] = int(frame_idx)
            if self._last_visible[i] is not None and visible != self._last_visible[i]:
                self._changes[i] += 1
            if self._first[i] >= 0:
                self._last_visible[i] = visible

    def close(self) -> Path:
        """Finish the file (statistics after the masks) and move it into place."""
        if self._file is None:
            return self.path
        h, w = self.size
        mean = np.where(
            self._visible_frames > 0, self._area / np.maximum(self._visible_frames, 1), 0
        )
        tail = {
            "masklet_frame_index": self.frames,
            "masklet_size_abs": [float(a) for a in mean],
            "masklet_size_rel": [float(a) / (h * w) for a in mean],
            "masklet_size_bucket": [_bucket(a) for a in mean],
            "masklet_visibility_changes": self._changes,
            "masklet_first_appeared_frame": self._first,
            "masklet_frame_count": [len(self.frames)] * len(self.obj_ids),
        }
        self._file.write("], " + json.dumps(tail)[1:])
        if not self._stream:
            self._file.close()
            os.replace(self._tmp, self.path)
        self._file = None
        return self.path


def _bucket(area: float) -> str:
    if area < 32**2:
        return "small"
    return "medium" if area < 96**2 else "large"


def _plain_id(obj_id: Hashable) -> Any:
    return obj_id if isinstance(obj_id, (int, str)) else str(obj_id)


class OverlayWriter:
    """An MP4 (``mp4v``) of frames with the objects' masks drawn over them."""

    def __init__(self, path: str | Path, size: tuple[int, int], fps: float = 24.0) -> None:
        import cv2

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        h, w = size
        self._tmp = self.path.with_name(self.path.stem + ".part" + self.path.suffix)
        fourcc = cv2.VideoWriter_fourcc(*"mp4v")
        self._writer = cv2.VideoWriter(str(self._tmp), fourcc, float(fps or 24.0), (w, h))
        if not self._writer.isOpened():
            raise VideoError(f"cannot write the overlay video {str(self.path)!r}")

    def write(self, frame: np.ndarray, masks: np.ndarray, labels: Sequence[int]) -> None:
        import cv2

        from ..io.export import overlay

        colours = [PALETTE[(label - 1) % len(PALETTE)] for label in labels]
        drawn = overlay(frame, list(masks), alpha=0.5, colors=colours) if len(masks) else frame
        self._writer.write(cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))

    def close(self) -> Path:
        self._writer.release()
        os.replace(self._tmp, self.path)
        return self.path
