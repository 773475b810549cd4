"""Meta's SAM 2 video predictor API: change the import, keep the code.

from tijeras.sam2 import build_sam2_video_predictor

predictor = build_sam2_video_predictor(
    "configs/sam2.1/sam2.1_hiera_t.yaml", "sam2.1_hiera_tiny.pt", device="cpu"
)
state = predictor.init_state(video_path="clip.mp4")   # a JPEG folder, a video file, frames
predictor.add_new_points_or_box(state, frame_idx=0, obj_id=1, points=[[210, 350]], labels=[1])
for frame_idx, obj_ids, mask_logits in predictor.propagate_in_video(state):
    ...

Same methods, arguments, defaults and outputs as ``sam2.sam2_video_predictor.
SAM2VideoPredictor``; the same masks on the same weights (``tests/video``). What differs:
frames are read when needed (a video file or folder is never loaded whole), the objects of a
frame are decoded in one batch, the predictor is not an ``nn.Module`` (the model is its
``model``), the state is a typed record (:class:`~tijeras.video.state.VideoState`, readable
under Meta's keys ``num_frames``, ``video_height``...), and ``init_state(...,
keep_all_memories=False)`` bounds memory on long videos. Errors name the problem
(:mod:`tijeras.video.errors`) and are also the exception types Meta raises.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from pathlib import Path
from typing import Any

import torch

from ..errors import TijerasError
from ..models.sam2.model import Sam2Model
from ..models.sam2.video_config import TrackingConfig, parse_overrides, tracking_config
from ..video.state import VideoState
from ..video.tracker import VideoTracker


class SAM2VideoPredictor:
    """Tracks prompted objects through a video (Meta's API).

    Args:
        model: a SAM 2 model (``build_sam2``).
        config: tracking options; by default Meta's for the model's version, with
            post-processing.
    """

    def __init__(self, model: Sam2Model, config: TrackingConfig | None = None) -> None:
        self.model = model
        self.config = config or tracking_config(model.config)
        self.tracker = VideoTracker(model, self.config)

    # Meta's attributes read by user code
    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def image_size(self) -> int:
        return self.model.config.image_size

    @property
    def fill_hole_area(self) -> int:
        return self.config.fill_hole_area

    @property
    def non_overlap_masks(self) -> bool:
        return self.config.non_overlap_masks

    def init_state(
        self,
        video_path: Any,
        offload_video_to_cpu: bool = False,
        offload_state_to_cpu: bool = False,
        async_loading_frames: bool = False,
        *,
        keep_all_memories: bool = True,
    ) -> VideoState:
        """Open a video and return its tracking state.

        Args:
            video_path: a folder of JPEG frames (``00000.jpg``...), a video file (MP4, MOV,
                MKV, WebM, AVI... or its bytes), or a sequence of H x W x 3 RGB frames.
            offload_video_to_cpu: accepted for compatibility; frames are always decoded on
                the CPU when needed and only the frame being encoded goes to the device.
            offload_state_to_cpu: keep memories and masks in CPU memory.
            async_loading_frames: accepted for compatibility (frames load lazily anyway).
            keep_all_memories: keep every frame's result (Meta's behaviour). False keeps only
                what the rest of a propagation reads (memory flat in video length); prompting
                or propagating again over released frames is then an error.
        """
        state = self.tracker.init_state(
            video_path,
            offload_video_to_cpu=offload_video_to_cpu,
            offload_state_to_cpu=offload_state_to_cpu,
            keep_all_memories=keep_all_memories,
        )
        self.tracker.features(state, 0)  # encode frame 0, where prompts usually go
        return state

    def add_new_points_or_box(
        self,
        inference_state: VideoState,
        frame_idx: int,
        obj_id: Hashable,
        points: Any = None,
        labels: Any = None,
        clear_old_points: bool = True,
        normalize_coords: bool = True,
        box: Any = None,
    ) -> tuple[int, list[Hashable], torch.Tensor]:
        """Clicks (N x 2 xy, labels 1 foreground / 0 background) and/or a box (x0, y0, x1,
        y1) for one object on one frame, in pixels (or 0..1 with ``normalize_coords=False``).

        Returns:
            ``(frame_idx, obj_ids, masks)``: every object's mask logits on the frame,
            ``len(obj_ids) x 1 x H x W``.
        """
        out = self.tracker.add_points(
            inference_state,
            frame_idx,
            obj_id,
            points,
            labels,
            clear_old_points=clear_old_points,
            normalize_coords=normalize_coords,
            box=box,
        )
        return out.frame_idx, list(out.obj_ids), out.logits

    def add_new_points(self, *args: Any, **kwargs: Any) -> tuple[int, list[Hashable], torch.Tensor]:
        """Older name of :meth:`add_new_points_or_box`."""
        return self.add_new_points_or_box(*args, **kwargs)

    def add_new_mask(
        self, inference_state: VideoState, frame_idx: int, obj_id: Hashable, mask: Any
    ) -> tuple[int, list[Hashable], torch.Tensor]:
        """A mask (H x W bool or 0/1) for one object on one frame."""
        out = self.tracker.add_mask(inference_state, frame_idx, obj_id, mask)
        return out.frame_idx, list(out.obj_ids), out.logits

    def propagate_in_video_preflight(self, inference_state: VideoState) -> None:
        """Encode the memories of the prompted frames (run by :meth:`propagate_in_video`)."""
        self.tracker.preflight(inference_state)

    def propagate_in_video(
        self,
        inference_state: VideoState,
        start_frame_idx: int | None = None,
        max_frame_num_to_track: int | None = None,
        reverse: bool = False,
    ) -> Iterator[tuple[int, list[Hashable], torch.Tensor]]:
        """Track every object, yielding ``(frame_idx, obj_ids, masks)`` per frame.

        Starts at ``start_frame_idx`` (the earliest prompted frame by default) and goes
        forward to the end, or backward to frame 0 with ``reverse``, at most
        ``max_frame_num_to_track`` frames past the start.
        """
        for out in self.tracker.propagate(
            inference_state, start_frame_idx, max_frame_num_to_track, reverse
        ):
            yield out.frame_idx, list(out.obj_ids), out.logits

    def clear_all_prompts_in_frame(
        self,
        inference_state: VideoState,
        frame_idx: int,
        obj_id: Hashable,
        need_output: bool = True,
    ) -> tuple[int, list[Hashable], torch.Tensor] | None:
        """Remove one object's prompts on a frame."""
        out = self.tracker.clear_prompts(inference_state, frame_idx, obj_id, need_output)
        if out is None:
            return None
        return out.frame_idx, list(out.obj_ids), out.logits

    def reset_state(self, inference_state: VideoState) -> None:
        """Remove every object, prompt and result."""
        self.tracker.reset(inference_state)

    def remove_object(
        self,
        inference_state: VideoState,
        obj_id: Hashable,
        strict: bool = False,
        need_output: bool = True,
    ) -> tuple[list[Hashable], list[tuple[int, torch.Tensor]]]:
        """Remove an object; returns the remaining ids and ``(frame_idx, masks)`` of the
        frames where it had prompts."""
        ids, frames = self.tracker.remove_object(inference_state, obj_id, strict, need_output)
        return ids, [(f.frame_idx, f.logits) for f in frames]


def build_sam2_video_predictor(
    config_file: str,
    ckpt_path: str | Path | None = None,
    device: str | torch.device = "cuda",
    mode: str = "eval",
    hydra_overrides_extra: list[str] | None = None,
    apply_postprocessing: bool = True,
    vos_optimized: bool = False,
    **kwargs: Any,
) -> SAM2VideoPredictor:
    """Build a SAM 2 / 2.1 video predictor with Meta's builder signature.

    Args:
        config_file: a registered name (``"sam2.1-hiera-tiny"``) or Meta's config name
            (``"configs/sam2.1/sam2.1_hiera_t.yaml"``...).
        ckpt_path: Meta's ``.pt`` file, or None for random weights.
        device: where the model runs (Meta's default ``"cuda"``; pass ``"cpu"`` without a GPU).
        mode: ``"eval"`` (video tracking has no training mode here).
        hydra_overrides_extra: Meta's ``++model.<option>=<value>`` strings for tracking
            options (``non_overlap_masks``, ``fill_hole_area``, ``memory_temporal_stride_for_eval``,
            ``max_cond_frames_in_attn``...); architecture overrides are refused.
        apply_postprocessing: Meta's default post-processing: dynamic multimask fallback,
            binarised memories of prompted frames, holes of up to 8 low-res pixels filled.
        vos_optimized: accepted for compatibility (Meta compiles the model with it; tijeras
            runs the same model).
    """
    if mode != "eval":
        raise TijerasError(f"the video predictor runs in mode 'eval', not {mode!r}")
    overrides = parse_overrides(list(hydra_overrides_extra or []))
    from .build import build_sam2

    model = build_sam2(
        config_file,
        ckpt_path,
        device=device,
        mode="eval",
        apply_postprocessing=apply_postprocessing,
    )
    config = tracking_config(model.config, apply_postprocessing=apply_postprocessing, **overrides)
    return SAM2VideoPredictor(model, config)  # type: ignore[arg-type]
