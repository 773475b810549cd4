"""``SAM2AutomaticMaskGenerator``: everything mode for SAM 2 with Meta's arguments and defaults.

It is tijeras' everything-mode generator (same records, filters, crops and mask encoding) with
SAM 2's options: a configurable mask threshold, single- or multi-mask candidates per point, and
``use_m2m``, one refinement step that decodes each candidate again with its own low-res logits
as the mask prompt.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..automatic.generator import SamAutomaticMaskGenerator
from .predictor import LOW_RES_CLAMP


class SAM2AutomaticMaskGenerator(SamAutomaticMaskGenerator):
    """Generate masks for a whole image from a grid of point prompts with a SAM 2 model.

    Args:
        model: a SAM 2 model (:func:`tijeras.sam2.build_sam2`).
        mask_threshold: logit threshold of the masks.
        use_m2m: refine every candidate once with its own low-res logits as mask prompt.
        multimask_output: three candidates per point (else one).

    The other arguments are those of
    :class:`~tijeras.automatic.generator.SamAutomaticMaskGenerator`; the defaults are Meta's
    for SAM 2 (``pred_iou_thresh=0.8``).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        points_per_side: int | None = 32,
        points_per_batch: int = 64,
        pred_iou_thresh: float = 0.8,
        stability_score_thresh: float = 0.95,
        stability_score_offset: float = 1.0,
        mask_threshold: float = 0.0,
        box_nms_thresh: float = 0.7,
        crop_n_layers: int = 0,
        crop_nms_thresh: float = 0.7,
        crop_overlap_ratio: float = 512 / 1500,
        crop_n_points_downscale_factor: int = 1,
        point_grids: list[np.ndarray] | None = None,
        min_mask_region_area: int = 0,
        output_mode: str = "binary_mask",
        use_m2m: bool = False,
        multimask_output: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            model,
            points_per_side=points_per_side,
            points_per_batch=points_per_batch,
            pred_iou_thresh=pred_iou_thresh,
            stability_score_thresh=stability_score_thresh,
            stability_score_offset=stability_score_offset,
            box_nms_thresh=box_nms_thresh,
            crop_n_layers=crop_n_layers,
            crop_nms_thresh=crop_nms_thresh,
            crop_overlap_ratio=crop_overlap_ratio,
            crop_n_points_downscale_factor=crop_n_points_downscale_factor,
            point_grids=point_grids,
            min_mask_region_area=min_mask_region_area,
            output_mode=output_mode,
        )
        self.mask_threshold = float(mask_threshold)
        self.use_m2m = use_m2m
        self.multimask_output = multimask_output

    @classmethod
    def from_pretrained(cls, model_id: str, **kwargs: Any) -> SAM2AutomaticMaskGenerator:
        """Build from a registered name or Hugging Face id (weights from the tijeras cache)."""
        from ..api import load_model

        return cls(load_model(model_id, device=kwargs.pop("device", "cpu")), **kwargs)

    def _decode_points(
        self, coords: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """B x C candidates per point (C = 3 or 1), refined once when ``use_m2m``."""
        decode = self.predictor.decode
        low_res, iou = decode(coords, labels, None, None, self.multimask_output)
        if not self.use_m2m:
            return low_res, iou
        b, c = iou.shape
        flat_coords = coords.repeat_interleave(c, dim=0)
        flat_labels = labels.repeat_interleave(c, dim=0)
        prompts = low_res.flatten(0, 1)[:, None].clamp(-LOW_RES_CLAMP, LOW_RES_CLAMP)
        parts = [
            decode(
                flat_coords[i : i + self.points_per_batch],
                flat_labels[i : i + self.points_per_batch],
                None,
                prompts[i : i + self.points_per_batch],
                False,
            )
            for i in range(0, b * c, self.points_per_batch)
        ]
        refined = torch.cat([p[0] for p in parts]).view(b, c, *low_res.shape[-2:])
        return refined, torch.cat([p[1] for p in parts]).view(b, c)
