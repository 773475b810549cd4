"""The state of one video being tracked: typed records, outside any model.

A :class:`VideoState` holds the video's frames (a lazy source), the prompts and results of each
object (:class:`ObjectTrack`) and a few encoded frames (:class:`FeatureCache`). The tracker
(:mod:`tijeras.video.tracker`) is the only writer; users read it through the predictor.

What an object keeps per frame is a :class:`FrameResult`: its low-res mask logits, object
score, object pointer and, once encoded, its memory. Conditioning frames (those prompted
before they were tracked) are kept apart from tracked frames, and results of prompts wait as
*pending* until propagation starts and encodes their memories, as in Meta's predictor.

With ``keep_all_memories=False`` the tracker drops what no later step can read (see
:meth:`ObjectTrack.release`), and remembers which frames it dropped so that a request for them
is an error, never a silently different result.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from ..models.sam2.tracking import FrameFeatures
from .errors import TrackingError
from .frames import FrameSource


@dataclass(frozen=True)
class FrameResult:
    """One object's result on one frame.

    Attributes:
        low_res: 1 x 1 x 4h x 4w mask logits (holes filled when configured), or None once
            released.
        obj_ptr: 1 x C object pointer.
        object_score: 1 x 1 logit that the object is present.
        memory: 1 x L x Cm memory in the storage dtype, None until encoded (or released).
    """

    low_res: torch.Tensor | None
    obj_ptr: torch.Tensor
    object_score: torch.Tensor
    memory: torch.Tensor | None = None


@dataclass(frozen=True)
class PointPrompt:
    """Points on one frame: 1 x N x 2 in model-input pixels, 1 x N int32 labels (a box is its
    two corners with labels 2 and 3, first)."""

    coords: torch.Tensor
    labels: torch.Tensor

    @property
    def num_points(self) -> int:
        return int(self.labels.shape[1])


class FrameSpans:
    """A set of frame indices stored as sorted disjoint runs (compact for tracked ranges)."""

    def __init__(self) -> None:
        self._runs: list[list[int]] = []  # [first, last] inclusive

    def __contains__(self, frame: int) -> bool:
        i = bisect.bisect_right(self._runs, [frame, float("inf")]) - 1
        return i >= 0 and self._runs[i][0] <= frame <= self._runs[i][1]

    def add(self, frame: int) -> None:
        if frame in self:
            return
        i = bisect.bisect_right(self._runs, [frame, float("inf")])
        joins_left = i > 0 and self._runs[i - 1][1] == frame - 1
        joins_right = i < len(self._runs) and self._runs[i][0] == frame + 1
        if joins_left and joins_right:
            self._runs[i - 1][1] = self._runs[i][1]
            del self._runs[i]
        elif joins_left:
            self._runs[i - 1][1] = frame
        elif joins_right:
            self._runs[i][0] = frame
        else:
            self._runs.insert(i, [frame, frame])

    def discard(self, frame: int) -> None:
        i = bisect.bisect_right(self._runs, [frame, float("inf")]) - 1
        if i < 0 or not self._runs[i][0] <= frame <= self._runs[i][1]:
            return
        first, last = self._runs[i]
        pieces = [[a, b] for a, b in ((first, frame - 1), (frame + 1, last)) if a <= b]
        self._runs[i : i + 1] = pieces

    def clear(self) -> None:
        self._runs.clear()

    def __iter__(self) -> Iterator[int]:
        for first, last in self._runs:
            yield from range(first, last + 1)

    def __len__(self) -> int:
        return sum(last - first + 1 for first, last in self._runs)


@dataclass(eq=False)
class ObjectTrack:
    """One object's prompts and results (frame index -> record)."""

    obj_id: Hashable
    points: dict[int, PointPrompt] = field(default_factory=dict)
    masks: dict[int, torch.Tensor] = field(default_factory=dict)
    cond: dict[int, FrameResult] = field(default_factory=dict)
    non_cond: dict[int, FrameResult] = field(default_factory=dict)
    pending_cond: dict[int, FrameResult] = field(default_factory=dict)
    pending_non_cond: dict[int, FrameResult] = field(default_factory=dict)
    tracked_forward: FrameSpans = field(default_factory=FrameSpans)
    tracked_reverse: FrameSpans = field(default_factory=FrameSpans)
    released: FrameSpans = field(default_factory=FrameSpans)

    def pending(self, is_cond: bool) -> dict[int, FrameResult]:
        return self.pending_cond if is_cond else self.pending_non_cond

    def tracked_direction(self, frame: int) -> bool | None:
        """None if the frame was never tracked, else whether it was tracked in reverse."""
        if frame in self.tracked_forward:
            return False
        if frame in self.tracked_reverse:
            return True
        return None

    def mark_tracked(self, frame: int, reverse: bool) -> None:
        (self.tracked_reverse if reverse else self.tracked_forward).add(frame)
        (self.tracked_forward if reverse else self.tracked_reverse).discard(frame)

    def untrack(self, frame: int) -> None:
        self.tracked_forward.discard(frame)
        self.tracked_reverse.discard(frame)

    def stored(self, frame: int) -> FrameResult | None:
        """The frame's propagated result (conditioning first), or None."""
        self.check_kept(frame)
        out = self.cond.get(frame)
        return out if out is not None else self.non_cond.get(frame)

    def latest(self, frame: int, is_cond: bool) -> FrameResult | None:
        """The newest result on a frame: pending first, then propagated."""
        out = self.pending(is_cond).get(frame)
        return out if out is not None else self.stored(frame)

    def check_kept(self, frame: int) -> None:
        if frame in self.released:
            raise TrackingError(
                f"the results of object {self.obj_id!r} on frame {frame} were released to "
                "bound memory; use keep_all_memories=True to prompt or propagate again there"
            )

    def release(self, frame: int, *, memory_only: bool) -> None:
        """Drop a tracked frame's memory and mask (``memory_only``) or its whole result."""
        out = self.non_cond.get(frame)
        if out is None:
            return
        self.released.add(frame)
        if memory_only:
            self.non_cond[frame] = FrameResult(None, out.obj_ptr, out.object_score, None)
        else:
            del self.non_cond[frame]

    def clear_results(self) -> None:
        for store in (self.points, self.masks, self.cond, self.non_cond):
            store.clear()
        for store in (self.pending_cond, self.pending_non_cond):
            store.clear()
        for spans in (self.tracked_forward, self.tracked_reverse, self.released):
            spans.clear()


class FeatureCache:
    """The last few encoded frames (an LRU keyed by frame index)."""

    def __init__(self, size: int = 2) -> None:
        self.size = max(1, size)
        self._items: OrderedDict[int, FrameFeatures] = OrderedDict()

    def get(self, frame: int) -> FrameFeatures | None:
        item = self._items.get(frame)
        if item is not None:
            self._items.move_to_end(frame)
        return item

    def put(self, frame: int, features: FrameFeatures) -> None:
        self._items[frame] = features
        self._items.move_to_end(frame)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


_LEGACY_KEYS = {
    "num_frames": "num_frames",
    "video_height": "video_height",
    "video_width": "video_width",
    "obj_ids": "obj_ids",
    "device": "device",
    "storage_device": "storage_device",
    "offload_video_to_cpu": "offload_video_to_cpu",
    "offload_state_to_cpu": "offload_state_to_cpu",
}


@dataclass(eq=False)
class VideoState:
    """One video's tracking state.

    Attributes:
        frames: the video's frames (decoded on demand).
        num_frames: frames in the video, None for a stream.
        video_size: (H, W) of the frames; masks are returned at this size.
        device: where the model runs.
        storage_device: where memories and masks are kept (the CPU with
            ``offload_state_to_cpu``).
        offload_video_to_cpu, offload_state_to_cpu: Meta's options, as given.
        keep_all_memories: keep every result (Meta's behaviour: any frame can be prompted and
            propagation rerun); False keeps only what later frames of a propagation can read.
        objects: the objects in the order they were added (their index in every output).
        features: recently encoded frames.
    """

    frames: FrameSource
    num_frames: int | None
    video_size: tuple[int, int]
    device: torch.device
    storage_device: torch.device
    offload_video_to_cpu: bool = False
    offload_state_to_cpu: bool = False
    keep_all_memories: bool = True
    objects: dict[Hashable, ObjectTrack] = field(default_factory=dict)
    features: FeatureCache = field(default_factory=FeatureCache)

    @property
    def obj_ids(self) -> list[Hashable]:
        return list(self.objects)

    @property
    def video_height(self) -> int:
        return self.video_size[0]

    @property
    def video_width(self) -> int:
        return self.video_size[1]

    def track(self, obj_id: Hashable) -> ObjectTrack:
        """The object's track, or a :class:`TrackingError` naming the known objects."""
        track = self.objects.get(obj_id)
        if track is None:
            raise TrackingError(
                f"unknown object id {obj_id!r}; objects: {self.obj_ids or 'none yet'}"
            )
        return track

    def __getitem__(self, key: str) -> Any:
        """Read-only access under the keys of Meta's state dict (``num_frames``,
        ``video_height``, ``video_width``, ``obj_ids``, ``device`` ...), for code written
        against it."""
        if key not in _LEGACY_KEYS:
            raise KeyError(
                f"{key!r}: the video state is a typed record; readable keys are "
                f"{', '.join(_LEGACY_KEYS)} (or use its attributes)"
            )
        return getattr(self, _LEGACY_KEYS[key])
