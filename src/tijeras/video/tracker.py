"""The video tracker: prompts, propagation and bookkeeping over a :class:`VideoState`.

:class:`VideoTracker` implements the semantics of Meta's ``SAM2VideoPredictor`` (which frames
are conditioning frames, when memories are encoded, what a correction click reads, how
results are combined per frame) over SAM 2's per-frame computations
(:class:`~tijeras.models.sam2.tracking.Sam2Tracking`). It differs in how it runs, not in what
it computes:

- frames are decoded and encoded when first needed (never the whole video up front);
- the objects tracked into a frame are decoded together, one batch over the shared frame
  features (Meta runs them one at a time);
- with ``keep_all_memories=False`` what no later step of a propagation can read is dropped as
  the propagation moves on, so memory stays flat however long the video is.

Both :class:`~tijeras.sam2.video_predictor.SAM2VideoPredictor` (Meta's API) and
:class:`~tijeras.video.stream.VideoStream` (frames pushed one at a time) drive it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..models.sam2.memory_bank import (
    choose_conditioning,
    conditioning_pointers,
    pointer_budget,
    recent_memory_frames,
    recent_pointer_frames,
)
from ..models.sam2.model import Sam2Model
from ..models.sam2.tracking import (
    NO_OBJECT_SCORE,
    FrameFeatures,
    HeadOutput,
    MemoryContext,
    Sam2Tracking,
)
from ..models.sam2.video_config import TrackingConfig
from .errors import TrackingError, VideoPromptError
from .frames import model_input, open_frames
from .prompts import point_prompt
from .state import FeatureCache, FrameResult, ObjectTrack, PointPrompt, VideoState


@dataclass(frozen=True)
class FrameMasks:
    """Every object's mask logits on one frame.

    Attributes:
        frame_idx: the frame.
        obj_ids: the objects, in the order of the rows.
        logits: B x 1 x H x W mask logits at the video's size, on the model's device (a pixel
            is in the mask where its logit is above 0; ``-1024`` everywhere for an object
            absent or not yet seen).
        object_scores: B x 1 logits that each object is present (``-1024`` without a result).
    """

    frame_idx: int
    obj_ids: tuple[Hashable, ...]
    logits: torch.Tensor
    object_scores: torch.Tensor

    def masks(self) -> np.ndarray:
        """B x H x W bool masks."""
        return (self.logits[:, 0] > 0).cpu().numpy()


class VideoTracker:
    """Tracks objects through videos with one SAM 2 model.

    Args:
        model: a SAM 2 model (see :func:`tijeras.sam2.build_sam2_video_predictor`).
        config: tracking options (:func:`~tijeras.models.sam2.video_config.tracking_config`).
        feature_cache: encoded frames kept per video (a prompt and the propagation from it
            share the frame's encoding).
    """

    def __init__(self, model: Sam2Model, config: TrackingConfig, *, feature_cache: int = 2):
        self.tracking = Sam2Tracking(model, config)
        self.feature_cache = feature_cache

    @property
    def model(self) -> Sam2Model:
        return self.tracking.model

    @property
    def config(self) -> TrackingConfig:
        return self.tracking.config

    # ------------------------------------------------------------------ state
    def init_state(
        self,
        video: Any,
        *,
        offload_video_to_cpu: bool = False,
        offload_state_to_cpu: bool = False,
        keep_all_memories: bool = True,
    ) -> VideoState:
        """A new state for a video (a folder, a file, frames or a frame source)."""
        frames = open_frames(video)
        device = self.tracking.device
        return VideoState(
            frames=frames,
            num_frames=frames.num_frames,
            video_size=frames.size,
            device=device,
            storage_device=torch.device("cpu") if offload_state_to_cpu else device,
            offload_video_to_cpu=offload_video_to_cpu,
            offload_state_to_cpu=offload_state_to_cpu,
            keep_all_memories=keep_all_memories,
            features=FeatureCache(self.feature_cache),
        )

    def features(self, state: VideoState, frame_idx: int) -> FrameFeatures:
        """The frame's encoding (decoded and encoded on first use, then cached)."""
        cached = state.features.get(frame_idx)
        if cached is not None:
            return cached
        model = self.model
        frame = state.frames.read(frame_idx)
        x = model_input(
            frame, model.config.image_size, model.config.pixel_mean, model.config.pixel_std
        )
        features = self.tracking.encode_frame(x)
        state.features.put(frame_idx, features)
        return features

    def _object(self, state: VideoState, obj_id: Hashable) -> ObjectTrack:
        track = state.objects.get(obj_id)
        if track is None:
            if not isinstance(obj_id, Hashable) or isinstance(obj_id, (float, bool)):
                raise VideoPromptError(f"object id must be an int or a string, got {obj_id!r}")
            track = ObjectTrack(obj_id)
            state.objects[obj_id] = track
        return track

    # ------------------------------------------------------------------ prompts
    @torch.inference_mode()
    def add_points(
        self,
        state: VideoState,
        frame_idx: int,
        obj_id: Hashable,
        points: Any = None,
        labels: Any = None,
        *,
        clear_old_points: bool = True,
        normalize_coords: bool = True,
        box: Any = None,
    ) -> FrameMasks:
        """Clicks and/or a box for one object on one frame; returns every object's masks there.

        On a frame the object was not tracked into, the prompt starts a conditioning frame
        (segmented without memory); on a tracked frame it corrects the tracked mask (decoded
        with the object's memories and its previous logits).
        """
        frame_idx = state.frames.check_index(frame_idx)
        if (points is None) != (labels is None):
            raise VideoPromptError("points and labels must be provided together")
        if points is None and box is None:
            raise VideoPromptError("at least one of points or box must be provided as input")
        if box is not None and not clear_old_points:
            raise VideoPromptError(
                "cannot add a box without clearing old points: the box comes before any point "
                "(use clear_old_points=True)"
            )
        prompt = point_prompt(
            state, frame_idx, points, labels, box, normalize_coords, self.tracking.image_size
        )
        track = self._object(state, obj_id)
        old = None if clear_old_points else track.points.get(frame_idx)
        if old is not None:
            prompt = PointPrompt(
                torch.cat([old.coords, prompt.coords], dim=1),
                torch.cat([old.labels, prompt.labels], dim=1),
            )
        track.points[frame_idx] = prompt
        track.masks.pop(frame_idx, None)
        return self._interact(state, track, frame_idx, prompt, None)

    @torch.inference_mode()
    def add_mask(
        self, state: VideoState, frame_idx: int, obj_id: Hashable, mask: Any
    ) -> FrameMasks:
        """A mask (H x W, non-zero inside) for one object on one frame."""
        frame_idx = state.frames.check_index(frame_idx)
        m = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask)
        if m.dim() != 2:
            raise VideoPromptError(f"a mask prompt must be H x W, got shape {tuple(m.shape)}")
        if m.shape[0] == 0 or m.shape[1] == 0:
            raise VideoPromptError("a mask prompt must not be empty (0 pixels)")
        size = self.tracking.image_size
        x = (m != 0).float()[None, None].to(state.device)
        if tuple(x.shape[-2:]) != (size, size):
            x = F.interpolate(x, (size, size), mode="bilinear", align_corners=False, antialias=True)
            x = (x >= 0.5).float()
        track = self._object(state, obj_id)
        track.masks[frame_idx] = x
        track.points.pop(frame_idx, None)
        return self._interact(state, track, frame_idx, None, x)

    def _interact(
        self,
        state: VideoState,
        track: ObjectTrack,
        frame_idx: int,
        prompt: PointPrompt | None,
        mask: torch.Tensor | None,
    ) -> FrameMasks:
        reverse = track.tracked_direction(frame_idx)
        is_init = reverse is None
        is_cond = is_init or self.config.add_all_frames_to_correct_as_cond
        prev_logits = None
        if prompt is not None:
            prev = track.latest(frame_idx, is_cond)
            if prev is not None and prev.low_res is not None:
                prev_logits = prev.low_res.to(state.device).clamp(-32.0, 32.0)
        out = self._single_frame(
            state, track, frame_idx, is_init, bool(reverse), prompt, mask, prev_logits
        )
        track.pending(is_cond)[frame_idx] = out
        return self.frame_output(state, frame_idx, is_cond)

    # ------------------------------------------------------------------ one frame
    def _single_frame(
        self,
        state: VideoState,
        track: ObjectTrack,
        frame_idx: int,
        is_init: bool,
        reverse: bool,
        prompt: PointPrompt | None,
        mask: torch.Tensor | None,
        prev_logits: torch.Tensor | None,
    ) -> FrameResult:
        """One object's prompted frame (no memory encoded yet)."""
        tracking = self.tracking
        features = self.features(state, frame_idx)
        if mask is not None and self.config.use_mask_input_as_output:
            heads = tracking.mask_as_output(features, mask)
        else:
            if is_init:
                pix = tracking.without_memory(features, 1)
            else:
                ctx = self._context(state, track, frame_idx, reverse)
                pix = tracking.condition(features, [ctx], self._budget(state))
            points = None if prompt is None else (prompt.coords, prompt.labels)
            multimask = tracking.use_multimask(is_init, 0 if prompt is None else prompt.num_points)
            mask_input = prev_logits if prev_logits is not None else mask
            heads = tracking.decode(pix, features, points, mask_input, multimask)
        return self._store(state, heads, 0, None)

    def _store(
        self, state: VideoState, heads: HeadOutput, row: int, memory: torch.Tensor | None
    ) -> FrameResult:
        """Row ``row`` of the heads' outputs as a stored result (holes filled)."""
        storage = state.storage_device
        low = self.tracking.fill_holes(heads.low_res[row : row + 1])
        return FrameResult(
            low_res=low.to(storage).clone(),
            obj_ptr=heads.obj_ptr[row : row + 1].clone(),
            object_score=heads.object_scores[row : row + 1].clone(),
            memory=None if memory is None else memory[row : row + 1].to(storage).clone(),
        )

    def _budget(self, state: VideoState) -> int:
        return pointer_budget(self.config, state.num_frames)

    def _context(
        self, state: VideoState, track: ObjectTrack, frame_idx: int, reverse: bool
    ) -> MemoryContext:
        """The memories and pointers one object attends on a frame."""
        cfg = self.config
        if not track.cond:
            raise TrackingError(
                f"object {track.obj_id!r} has no prompted frame to track from; add points, a "
                "box or a mask first"
            )
        choice = choose_conditioning(frame_idx, list(track.cond), cfg.max_cond_frames_in_attn)
        spatial = [(0, _memory(track, t, track.cond[t])) for t in choice.selected]
        for t_pos, prev in recent_memory_frames(frame_idx, cfg, reverse):
            out = _lookup(track, prev, choice.unselected)
            if out is not None:
                spatial.append((t_pos, _memory(track, prev, out)))
        pointers = [
            (d, track.cond[t].obj_ptr)
            for d, t in conditioning_pointers(frame_idx, choice.selected, cfg, reverse)
        ]
        for d, t in recent_pointer_frames(frame_idx, cfg, state.num_frames, reverse):
            out = _lookup(track, t, choice.unselected)
            if out is not None:
                pointers.append((d, out.obj_ptr))
        return MemoryContext(tuple(spatial), tuple(pointers))

    def _track_objects(
        self, state: VideoState, frame_idx: int, tracks: Sequence[ObjectTrack], reverse: bool
    ) -> list[FrameResult]:
        """Track several objects into a frame, batched by memory layout."""
        tracking = self.tracking
        features = self.features(state, frame_idx)
        contexts = [self._context(state, t, frame_idx, reverse) for t in tracks]
        groups: dict[tuple[int, int], list[int]] = {}
        for i, ctx in enumerate(contexts):
            groups.setdefault(ctx.layout, []).append(i)
        results: list[FrameResult | None] = [None] * len(tracks)
        multimask = tracking.use_multimask(False, 0)
        for rows in groups.values():
            pix = tracking.condition(features, [contexts[i] for i in rows], self._budget(state))
            heads = tracking.decode(pix, features, None, None, multimask)
            memory = tracking.encode_memory(
                features, heads.high_res, heads.object_scores, from_prompts=False
            )
            for j, i in enumerate(rows):
                results[i] = self._store(state, heads, j, memory)
        return [r for r in results if r is not None]

    # ------------------------------------------------------------------ propagation
    @torch.inference_mode()
    def preflight(self, state: VideoState) -> None:
        """Encode the memories of prompted frames and make them part of the tracks."""
        if not state.objects:
            raise TrackingError(
                "No input points or masks are provided for any object; please add inputs first."
            )
        self._encode_pending(state)
        for track in state.objects.values():
            for is_cond in (False, True):
                pending = track.pending(is_cond)
                target = track.cond if is_cond else track.non_cond
                for frame_idx, out in pending.items():
                    target[frame_idx] = out
                    track.released.discard(frame_idx)
                    if self.config.clear_non_cond_mem_around_input:
                        self._clear_around(track, frame_idx)
                pending.clear()
            if not track.cond:
                raise TrackingError(
                    f"No input points or masks are provided for object id {track.obj_id!r}; "
                    "please add inputs first."
                )
            for frame_idx in track.cond:
                track.non_cond.pop(frame_idx, None)

    def _encode_pending(self, state: VideoState) -> None:
        """Memories of every pending result, objects on the same frame in one batch."""
        todo: dict[int, list[tuple[dict[int, FrameResult], int]]] = {}
        for track in state.objects.values():
            for is_cond in (False, True):
                pending = track.pending(is_cond)
                for frame_idx, out in pending.items():
                    if out.memory is None:
                        todo.setdefault(frame_idx, []).append((pending, frame_idx))
        for frame_idx, entries in todo.items():
            features = self.features(state, frame_idx)
            outs = [store[f] for store, f in entries]
            low = torch.cat([o.low_res for o in outs]).to(state.device)  # type: ignore[misc]
            scores = torch.cat([o.object_score for o in outs])
            memory = self.tracking.encode_memory(
                features, self.tracking.upsample(low), scores, from_prompts=True
            )
            for j, ((store, f), out) in enumerate(zip(entries, outs)):
                mem = memory[j : j + 1].to(state.storage_device).clone()
                store[f] = FrameResult(out.low_res, out.obj_ptr, out.object_score, mem)

    def _clear_around(self, track: ObjectTrack, frame_idx: int) -> None:
        reach = self.config.memory_temporal_stride * self.config.num_maskmem
        for t in range(frame_idx - reach, frame_idx + reach + 1):
            track.non_cond.pop(t, None)

    @torch.inference_mode()
    def propagate(
        self,
        state: VideoState,
        start_frame_idx: int | None = None,
        max_frame_num_to_track: int | None = None,
        reverse: bool = False,
    ) -> Iterator[FrameMasks]:
        """Track every object from a start frame (the earliest prompted frame by default)
        forward to the end of the video, or backward to frame 0 with ``reverse``."""
        self.preflight(state)
        tracks = list(state.objects.values())
        if start_frame_idx is None:
            start_frame_idx = min(t for track in tracks for t in track.cond)
        start = state.frames.check_index(start_frame_idx)
        limit = state.num_frames if max_frame_num_to_track is None else max_frame_num_to_track
        if limit is None or limit < 0:
            raise TrackingError("max_frame_num_to_track must be a number of frames >= 0")
        if reverse:
            end = max(start - limit, 0)
            order: Sequence[int] = range(start, end - 1, -1) if start > 0 else []
        else:
            last = start + limit
            if state.num_frames is not None:
                last = min(last, state.num_frames - 1)
            order = range(start, last + 1)
        for frame_idx in order:
            yield self._propagate_frame(state, tracks, frame_idx, reverse)
            if not state.keep_all_memories:
                for track in tracks:
                    self._release_behind(track, frame_idx, reverse)

    def _propagate_frame(
        self, state: VideoState, tracks: list[ObjectTrack], frame_idx: int, reverse: bool
    ) -> FrameMasks:
        to_track = [t for t in tracks if frame_idx not in t.cond]
        if self.config.clear_non_cond_mem_around_input:
            for t in tracks:
                if frame_idx in t.cond:
                    self._clear_around(t, frame_idx)
        tracked = self._track_objects(state, frame_idx, to_track, reverse) if to_track else []
        new = {t.obj_id: out for t, out in zip(to_track, tracked)}
        lows, scores = [], []
        for track in tracks:
            out = track.cond.get(frame_idx)
            if out is None:
                out = new[track.obj_id]
                track.non_cond[frame_idx] = out
                track.released.discard(frame_idx)
            track.mark_tracked(frame_idx, reverse)
            lows.append(out.low_res.to(state.device))  # type: ignore[union-attr]
            scores.append(out.object_score.to(state.device))
        logits = self._video_res(state, torch.cat(lows))
        return FrameMasks(frame_idx, tuple(state.objects), logits, torch.cat(scores))

    def _release_behind(self, track: ObjectTrack, frame_idx: int, reverse: bool) -> None:
        """Drop what no later frame of this propagation reads (outside the windows)."""
        step = 1 if reverse else -1
        # Frames near a conditioning frame stay: a later propagation from that frame (in either
        # direction) reads them before anything it computes itself.
        for window, memory_only in (
            (self.config.memory_window, True),
            (self.config.pointer_window, False),
        ):
            frame = frame_idx + step * window
            if frame in track.non_cond and all(abs(frame - c) > window for c in track.cond):
                track.release(frame, memory_only=memory_only)

    # ------------------------------------------------------------------ outputs
    def frame_output(self, state: VideoState, frame_idx: int, is_cond: bool) -> FrameMasks:
        """Every object's newest logits on a frame (pending prompts first), at video size."""
        h, w = state.video_size
        b = len(state.objects)
        logits = torch.full((b, 1, h, w), NO_OBJECT_SCORE, device=state.storage_device)
        scores = torch.full((b, 1), NO_OBJECT_SCORE, device=state.device)
        for i, track in enumerate(state.objects.values()):
            out = track.latest(frame_idx, is_cond)
            if out is None:
                continue
            if out.low_res is None:
                track.check_kept(frame_idx)
                continue
            logits[i : i + 1] = F.interpolate(
                out.low_res.to(logits.device), (h, w), mode="bilinear", align_corners=False
            )
            scores[i : i + 1] = out.object_score.to(state.device)
        logits = logits.to(state.device)
        if self.config.non_overlap_masks:
            logits = self.tracking.non_overlapping(logits)
        return FrameMasks(frame_idx, tuple(state.objects), logits, scores)

    def _video_res(self, state: VideoState, low_res: torch.Tensor) -> torch.Tensor:
        h, w = state.video_size
        logits = low_res
        if tuple(low_res.shape[-2:]) != (h, w):
            logits = F.interpolate(low_res, (h, w), mode="bilinear", align_corners=False)
        if self.config.non_overlap_masks:
            logits = self.tracking.non_overlapping(logits)
        return logits

    # ------------------------------------------------------------------ editing
    @torch.inference_mode()
    def clear_prompts(
        self, state: VideoState, frame_idx: int, obj_id: Hashable, need_output: bool = True
    ) -> FrameMasks | None:
        """Remove one object's prompts on a frame (its result there stays, as tracked)."""
        frame_idx = state.frames.check_index(frame_idx)
        track = state.track(obj_id)
        track.points.pop(frame_idx, None)
        track.masks.pop(frame_idx, None)
        track.pending_cond.pop(frame_idx, None)
        track.pending_non_cond.pop(frame_idx, None)
        out = track.cond.pop(frame_idx, None)
        if out is not None:
            track.non_cond[frame_idx] = out
            track.untrack(frame_idx)
        if not need_output:
            return None
        is_cond = any(frame_idx in t.pending_cond for t in state.objects.values())
        return self.frame_output(state, frame_idx, is_cond)

    @torch.inference_mode()
    def remove_object(
        self, state: VideoState, obj_id: Hashable, strict: bool = False, need_output: bool = True
    ) -> tuple[list[Hashable], list[FrameMasks]]:
        """Remove an object; returns the remaining ids and the frames whose output changed."""
        if obj_id not in state.objects:
            if strict:
                raise TrackingError(
                    f"Cannot remove object id {obj_id!r} as it doesn't exist. "
                    f"All existing object ids: {state.obj_ids}."
                )
            return state.obj_ids, []
        if len(state.objects) == 1:
            self.reset(state)
            return state.obj_ids, []
        track = state.objects[obj_id]
        frames = sorted(set(track.points) | set(track.masks))
        for frame_idx in frames:
            self.clear_prompts(state, frame_idx, obj_id, need_output=False)
        del state.objects[obj_id]
        updated = []
        if need_output:
            for frame_idx in frames:
                is_cond = any(frame_idx in t.pending_cond for t in state.objects.values())
                updated.append(self.frame_output(state, frame_idx, is_cond))
        return state.obj_ids, updated

    def reset(self, state: VideoState) -> None:
        """Remove every object and result (the video stays open)."""
        for track in state.objects.values():
            track.clear_results()
        state.objects.clear()


def _lookup(track: ObjectTrack, frame: int, unselected: frozenset[int]) -> FrameResult | None:
    """A tracked frame's result (or an unattended conditioning frame's), or None."""
    if frame in track.released and frame not in track.non_cond:
        track.check_kept(frame)
    out = track.non_cond.get(frame)
    if out is None and frame in unselected:
        out = track.cond.get(frame)
    return out


def _memory(track: ObjectTrack, frame: int, out: FrameResult) -> torch.Tensor:
    if out.memory is None:
        track.check_kept(frame)
        raise TrackingError(f"object {track.obj_id!r} has no memory of frame {frame}")
    return out.memory
