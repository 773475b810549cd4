"""The options of SAM 2's mask decoder (torch-free, so the families' spec modules stay light).

SAM 2 and SAM 3's interactive head build the same decoder (:mod:`.sam2_decoder`) from this
record; each family's own config holds one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sam2DecoderConfig:
    """The SAM 2 mask decoder (SAM's decoder plus high-res features and an object score)."""

    transformer_depth: int = 2
    transformer_heads: int = 8
    transformer_mlp_dim: int = 2048
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256
    mask_in_chans: int = 16
    use_high_res_features: bool = True
    iou_prediction_use_sigmoid: bool = True
    pred_obj_scores: bool = True
    pred_obj_scores_mlp: bool = True
    use_multimask_token_for_obj_ptr: bool = True
    dynamic_multimask_via_stability: bool = True
    dynamic_multimask_stability_delta: float = 0.05
    dynamic_multimask_stability_thresh: float = 0.98
