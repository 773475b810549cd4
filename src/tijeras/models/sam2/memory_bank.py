"""Which earlier frames SAM 2 attends when it tracks an object into a frame.

A frame attends (SAM 2 paper, section 4 and appendix C):

- the memories of the object's **conditioning frames** (those the user prompted), all of them
  or the ``max_cond_frames_in_attn`` closest in time, at temporal position 0;
- the memories of the ``num_maskmem - 1`` most recent **tracked frames** before it (after it,
  when tracking in reverse), the oldest at temporal position 1 and the previous frame at
  ``num_maskmem - 1``; with a stride r > 1 the older ones are taken from every r-th frame;
- the **object pointers** of conditioning frames (only those not in the future, by default)
  and of the up to ``max_obj_ptrs - 1`` previous frames, each with its distance in frames.

These functions only name frames; the caller looks up what it has stored for them (a frame
without a stored memory is skipped). Torch-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .video_config import TrackingConfig


@dataclass(frozen=True)
class ConditioningChoice:
    """The conditioning frames a frame attends, and those it does not.

    Attributes:
        selected: attended conditioning frames, in the order they are attended.
        unselected: the others; one of them among the recent frames is attended as a recent
            memory instead.
    """

    selected: tuple[int, ...]
    unselected: frozenset[int]


def choose_conditioning(
    frame_idx: int, cond_frames: Sequence[int], max_cond: int
) -> ConditioningChoice:
    """The conditioning frames attended from ``frame_idx`` (``cond_frames`` in stored order).

    With a limit, the closest conditioning frame before the frame and the closest at or after
    it come first, then the others by distance.
    """
    if max_cond == -1 or len(cond_frames) <= max_cond:
        return ConditioningChoice(tuple(cond_frames), frozenset())
    chosen: list[int] = []
    before = [t for t in cond_frames if t < frame_idx]
    after = [t for t in cond_frames if t >= frame_idx]
    if before:
        chosen.append(max(before))
    if after:
        chosen.append(min(after))
    rest = sorted((t for t in cond_frames if t not in chosen), key=lambda t: abs(t - frame_idx))
    chosen += rest[: max_cond - len(chosen)]
    return ConditioningChoice(tuple(chosen), frozenset(t for t in cond_frames if t not in chosen))


def recent_memory_frames(
    frame_idx: int, config: TrackingConfig, reverse: bool
) -> list[tuple[int, int]]:
    """(temporal position, frame) of the recent memories, oldest position (1) first."""
    stride = config.memory_temporal_stride
    out = []
    for t_pos in range(1, config.num_maskmem):
        back = config.num_maskmem - t_pos  # frames before the current one
        if back == 1:
            prev = frame_idx + 1 if reverse else frame_idx - 1
        elif not reverse:
            prev = ((frame_idx - 2) // stride) * stride - (back - 2) * stride
        else:
            prev = -(-(frame_idx + 2) // stride) * stride + (back - 2) * stride
        out.append((t_pos, prev))
    return out


def conditioning_pointers(
    frame_idx: int, selected: Sequence[int], config: TrackingConfig, reverse: bool
) -> list[tuple[int, int]]:
    """(encoded distance, frame) of the attended conditioning frames' pointers."""
    out = []
    for t in selected:
        if config.only_obj_ptrs_in_the_past and (t < frame_idx if reverse else t > frame_idx):
            continue
        if config.use_signed_tpos_enc_to_obj_ptrs:
            distance = (frame_idx - t) * (-1 if reverse else 1)
        else:
            distance = abs(frame_idx - t)
        out.append((distance, t))
    return out


def pointer_budget(config: TrackingConfig, num_frames: int | None) -> int:
    """Frames whose pointers may be attended: ``max_obj_ptrs`` (at most the clip's length)."""
    if num_frames is None:
        return config.max_obj_ptrs_in_encoder
    return min(num_frames, config.max_obj_ptrs_in_encoder)


def recent_pointer_frames(
    frame_idx: int, config: TrackingConfig, num_frames: int | None, reverse: bool
) -> list[tuple[int, int]]:
    """(distance, frame) of the previous frames whose pointers may be attended, nearest first.

    The frames stop at the clip's ends (the end is unknown for a stream: ``num_frames=None``).
    """
    out = []
    for t_diff in range(1, pointer_budget(config, num_frames)):
        t = frame_idx + t_diff if reverse else frame_idx - t_diff
        if t < 0 or (num_frames is not None and t >= num_frames):
            break
        out.append((t_diff, t))
    return out
