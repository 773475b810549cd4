"""Tracking frames as they arrive: a camera, a decoder, a generator. No length needed.

stream = VideoStream(model)                         # a SAM 2 model (tijeras.load_model(...))
for frame in camera_frames():                       # H x W x 3 RGB arrays, one at a time
    prompts = [ObjectPrompt(1, points=[[210, 350]], labels=[1])] if first else []
    result = stream.push(frame, prompts)            # masks of every object on this frame
    show(result.masks())
    ...
    stream.add_prompt(ObjectPrompt(1, points=[[400, 120]], labels=[0]))  # correct this frame

Each :meth:`VideoStream.push` returns the new frame's masks before the next frame is read.
Prompts given with a frame start (or restart) objects there, as prompts on an untracked frame
do in Meta's predictor; :meth:`VideoStream.add_prompt` after a push corrects the frame just
returned, as a click on a tracked frame does. The results are those of the offline predictor
on the same frames and prompts (a test checks it), while memory stays flat: the stream holds
two frames and only the memories that later frames can still attend.

The offline predictor normalises pointer distances by the clip length when the clip has fewer
frames than ``max_obj_ptrs_in_encoder`` (16); pass ``num_frames`` when a short clip must match
it exactly.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..models.sam2.model import Sam2Model
from ..models.sam2.video_config import TrackingConfig, tracking_config
from .errors import VideoPromptError
from .frames import FrameStream, as_rgb
from .state import VideoState
from .tracker import FrameMasks, VideoTracker


@dataclass(frozen=True)
class ObjectPrompt:
    """Prompts for one object on one frame (pixels of the frame).

    Attributes:
        obj_id: the object (an int or a string).
        points: N x 2 xy points, with ``labels`` (1 foreground, 0 background).
        labels: N labels.
        box: x0, y0, x1, y1.
        mask: H x W mask (bool or 0/1); exclusive with points and box.
    """

    obj_id: Hashable
    points: Any = None
    labels: Any = None
    box: Any = None
    mask: Any = None

    def __post_init__(self) -> None:
        if self.mask is not None and (self.points is not None or self.box is not None):
            raise VideoPromptError(
                f"object {self.obj_id!r}: give a mask or points/box on a frame, not both"
            )
        if self.mask is None and self.points is None and self.box is None:
            raise VideoPromptError(f"object {self.obj_id!r}: no points, box or mask")


class VideoStream:
    """Tracks prompted objects through frames pushed one at a time.

    Args:
        model: a SAM 2 model.
        config: tracking options (default: Meta's for the model's version, with
            post-processing).
        num_frames: the clip's length when known (see the module notes), else None.
        offload_state_to_cpu: keep memories in CPU memory when the model is on a GPU.
    """

    def __init__(
        self,
        model: Sam2Model,
        config: TrackingConfig | None = None,
        *,
        num_frames: int | None = None,
        offload_state_to_cpu: bool = False,
    ) -> None:
        self.tracker = VideoTracker(model, config or tracking_config(model.config), feature_cache=1)
        self.source = FrameStream(keep=2)
        self.num_frames = num_frames
        self.offload_state_to_cpu = offload_state_to_cpu
        self.state: VideoState | None = None

    @property
    def frame_idx(self) -> int:
        """Index of the latest frame (-1 before the first push)."""
        return self.source.count - 1

    @property
    def obj_ids(self) -> list[Hashable]:
        return [] if self.state is None else self.state.obj_ids

    @torch.inference_mode()
    def push(self, frame: Any, prompts: Iterable[ObjectPrompt] = ()) -> FrameMasks:
        """Add a frame (H x W x 3 RGB array, PIL image or tensor), apply the prompts given for
        it, and return every object's masks on it."""
        index = self.source.push(frame)
        if self.state is None:
            self.state = self.tracker.init_state(
                self.source,
                offload_state_to_cpu=self.offload_state_to_cpu,
                keep_all_memories=False,
            )
            self.state.num_frames = self.num_frames
        for prompt in prompts:
            self._apply(prompt, index)
        if not self.state.objects:
            h, w = self.state.video_size
            device = self.state.device
            return FrameMasks(
                index, (), torch.empty(0, 1, h, w, device=device), torch.empty(0, 1, device=device)
            )
        results = list(self.tracker.propagate(self.state, index, 0))
        return results[0]

    @torch.inference_mode()
    def add_prompt(self, prompt: ObjectPrompt) -> FrameMasks:
        """Prompt the latest frame again (a correction, or a new object on it); returns its
        updated masks. The change reaches the memory when the next frame is pushed."""
        if self.state is None:
            raise VideoPromptError("push a frame before prompting")
        return self._apply(prompt, self.frame_idx)

    def remove_object(self, obj_id: Hashable) -> None:
        """Stop tracking an object."""
        if self.state is not None:
            self.tracker.remove_object(self.state, obj_id, strict=True, need_output=False)

    def _apply(self, prompt: ObjectPrompt, index: int) -> FrameMasks:
        assert self.state is not None
        if prompt.mask is not None:
            return self.tracker.add_mask(self.state, index, prompt.obj_id, prompt.mask)
        return self.tracker.add_points(
            self.state, index, prompt.obj_id, prompt.points, prompt.labels, box=prompt.box
        )

    def run(
        self,
        frames: Iterable[Any],
        prompts: Mapping[int, Sequence[ObjectPrompt]] | None = None,
    ) -> Iterator[FrameMasks]:
        """Push every frame of an iterable or an OpenCV ``VideoCapture`` (``prompts`` maps
        frame indices to their prompts) and yield each frame's masks."""
        prompts = prompts or {}
        if hasattr(frames, "read") and hasattr(frames, "isOpened"):
            frames = capture_frames(frames)
        for frame in frames:
            yield self.push(frame, prompts.get(self.frame_idx + 1, ()))


def capture_frames(capture: Any) -> Iterator[np.ndarray]:
    """RGB frames of an OpenCV ``VideoCapture`` (a camera index, a file or a URL), until it
    ends."""
    import cv2

    while True:
        ok, bgr = capture.read()
        if not ok:
            return
        yield as_rgb(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), 0)
