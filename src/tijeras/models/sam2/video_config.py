"""How SAM 2 tracks an object through a video: the options of its memory and its heads.

The sizes of the video modules live in :class:`~tijeras.models.sam2.config.MemoryConfig`
(they shape the checkpoint); everything here is behaviour, so one checkpoint can track with
other settings. :func:`tracking_config` gives the values of Meta's released SAM 2.0 and 2.1
configurations, with the post-processing Meta's video builder adds by default.

Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from ...errors import TijerasError
from .config import Sam2Config


@dataclass(frozen=True)
class TrackingConfig:
    """Behaviour of SAM 2 video tracking.

    Attributes:
        num_maskmem: memories attended per frame: the conditioning frames plus the
            ``num_maskmem - 1`` most recent tracked frames.
        memory_temporal_stride: take the older memories from every r-th frame (r > 1), the last
            frame always.
        max_cond_frames_in_attn: at most this many conditioning frames (the closest in time)
            are attended (-1: all).
        max_obj_ptrs_in_encoder: object pointers of at most this many frames are attended.
        add_tpos_enc_to_obj_ptrs: pointers carry a sine encoding of their distance in frames
            (SAM 2.1).
        use_signed_tpos_enc_to_obj_ptrs: the distance of a conditioning pointer is signed
            (SAM 2.1).
        only_obj_ptrs_in_the_past: pointers of conditioning frames after the current frame
            (before it, in reverse) are not attended.
        sigmoid_scale_for_mem_enc, sigmoid_bias_for_mem_enc: the mask probability is scaled
            and shifted before the memory encoder.
        binarize_mask_from_pts_for_mem_enc: masks of prompted frames enter memory thresholded
            (what the user saw), not as probabilities (post-processing).
        fill_hole_area: background regions of at most this many low-res pixels inside a mask
            are filled in the returned masks (post-processing; 0: off).
        use_mask_input_as_output: a mask prompt is taken as the frame's mask as it is.
        multimask_output_in_sam: three candidates for a first click (the best one is kept).
        multimask_min_pt_num, multimask_max_pt_num: clicks (a box counts two) for which
            candidates are decoded.
        multimask_output_for_tracking: candidates also on tracked frames.
        non_overlap_masks: a pixel belongs to the object with the highest logit in the
            returned masks.
        clear_non_cond_mem_around_input: a correction click clears tracked memories around
            its frame.
        add_all_frames_to_correct_as_cond: corrected frames become conditioning frames.
        memory_dtype: dtype the memories are stored in (Meta's predictor keeps bfloat16).
        dynamic_multimask_via_stability: where one mask is decoded and it is unstable, take
            the best of the three candidates instead (post-processing); None: as the model's
            decoder config says.
    """

    num_maskmem: int = 7
    memory_temporal_stride: int = 1
    max_cond_frames_in_attn: int = -1
    max_obj_ptrs_in_encoder: int = 16
    add_tpos_enc_to_obj_ptrs: bool = True
    use_signed_tpos_enc_to_obj_ptrs: bool = True
    only_obj_ptrs_in_the_past: bool = True
    sigmoid_scale_for_mem_enc: float = 20.0
    sigmoid_bias_for_mem_enc: float = -10.0
    binarize_mask_from_pts_for_mem_enc: bool = True
    fill_hole_area: int = 8
    use_mask_input_as_output: bool = True
    multimask_output_in_sam: bool = True
    multimask_min_pt_num: int = 0
    multimask_max_pt_num: int = 1
    multimask_output_for_tracking: bool = True
    non_overlap_masks: bool = False
    clear_non_cond_mem_around_input: bool = False
    add_all_frames_to_correct_as_cond: bool = False
    memory_dtype: str = "bfloat16"
    dynamic_multimask_via_stability: bool | None = None

    def __post_init__(self) -> None:
        if self.num_maskmem < 1:
            raise ValueError(f"num_maskmem must be at least 1, got {self.num_maskmem}")
        if self.memory_temporal_stride < 1:
            raise ValueError(
                f"memory_temporal_stride must be at least 1, got {self.memory_temporal_stride}"
            )
        if self.max_cond_frames_in_attn not in (-1,) and self.max_cond_frames_in_attn < 2:
            raise ValueError("max_cond_frames_in_attn must be -1 (all) or at least 2")
        if self.max_obj_ptrs_in_encoder < 1:
            raise ValueError("max_obj_ptrs_in_encoder must be at least 1")
        if self.memory_dtype not in ("bfloat16", "float16", "float32"):
            raise ValueError(
                f"memory_dtype must be bfloat16, float16 or float32, not {self.memory_dtype!r}"
            )

    @property
    def memory_window(self) -> int:
        """How many frames back (in the tracking direction) a tracked memory can be read."""
        if self.num_maskmem <= 1:
            return 0
        return 1 + (self.num_maskmem - 2) * self.memory_temporal_stride

    @property
    def pointer_window(self) -> int:
        """How many frames back a tracked frame's object pointer can be read."""
        return self.max_obj_ptrs_in_encoder - 1


def tracking_config(
    config: Sam2Config, *, apply_postprocessing: bool = True, **overrides: Any
) -> TrackingConfig:
    """The tracking options of Meta's released configuration for ``config``'s version.

    SAM 2.0 checkpoints attend object pointers without a temporal encoding; SAM 2.1 encodes
    the signed distance. ``apply_postprocessing`` (Meta's builder default) binarises the masks
    of prompted frames before the memory encoder and fills holes of up to 8 low-res pixels.
    Without it the decoder's dynamic multimask fallback is off too, as in Meta's builder.
    ``overrides`` set any other field.
    """
    base = TrackingConfig(
        add_tpos_enc_to_obj_ptrs=config.version != "2.0",
        use_signed_tpos_enc_to_obj_ptrs=config.version != "2.0",
        num_maskmem=config.memory.num_maskmem,
        binarize_mask_from_pts_for_mem_enc=apply_postprocessing,
        fill_hole_area=8 if apply_postprocessing else 0,
        dynamic_multimask_via_stability=apply_postprocessing,
    )
    return replace(base, **overrides) if overrides else base


FIELD_NAMES = tuple(f.name for f in fields(TrackingConfig))
_META_NAMES = {
    "memory_temporal_stride_for_eval": "memory_temporal_stride",
    "only_obj_ptrs_in_the_past_for_eval": "only_obj_ptrs_in_the_past",
    "use_mask_input_as_output_without_sam": "use_mask_input_as_output",
}


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """Meta's ``++model.<option>=<value>`` strings as :class:`TrackingConfig` fields.

    Only tracking options are accepted (``non_overlap_masks``, ``fill_hole_area``,
    ``memory_temporal_stride_for_eval``...); anything else, such as an architecture change,
    raises an error naming it.
    """
    types = {f.name: f.type for f in fields(TrackingConfig)}
    types["dynamic_multimask_via_stability"] = "bool"
    out: dict[str, Any] = {}
    for text in overrides:
        key, sep, value = text.lstrip("+").partition("=")
        name = key.removeprefix("model.").removeprefix("sam_mask_decoder_extra_args.")
        name = _META_NAMES.get(name, name)
        if not sep or not key.startswith("model.") or name not in types or name == "num_maskmem":
            raise TijerasError(
                f"unsupported override {text!r}: only tracking options can be overridden "
                f"(++model.<name>=<value> with <name> among "
                f"{', '.join(sorted(set(FIELD_NAMES) - {'num_maskmem'}))})"
            )
        out[name] = _parse_value(text, value, types[name])
    return out


def _parse_value(text: str, value: str, kind: Any) -> Any:
    value = value.strip()
    try:
        if kind in (bool, "bool"):
            if value.lower() not in ("true", "false"):
                raise ValueError(value)
            return value.lower() == "true"
        if kind in (int, "int"):
            return int(value)
        if kind in (float, "float"):
            return float(value)
        return value
    except ValueError:
        raise TijerasError(f"override {text!r}: cannot read {value!r} as {kind}") from None
