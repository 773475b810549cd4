"""``SAM2AutomaticMaskGenerator``: everything mode for SAM 2 with Meta's arguments and defaults.

It is tijeras' everything-mode generator (same records, filters, crops and mask encoding) with
SAM 2's options: a configurable mask threshold, single- or multi-mask candidates per point, and
``use_m2m``, one refinement step that decodes each candidate again with its own low-res logits
as the mask prompt. The defaults are :data:`~tijeras.automatic.options.SAM2_EVERYTHING`'s.

As in Meta's generator, ``min_mask_region_area`` is handed to its predictor as
``max_hole_area`` and ``max_sprinkle_area``: holes and specks of at most that many low-res
pixels are cleaned from each candidate's logits before upscaling (Meta's CPU builds skip this
with a warning; tijeras always does it), and the final masks are not cleaned again.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..automatic.generator import AutoMaskGenerator, meta_options
from ..automatic.options import SAM2_EVERYTHING
from ..automatic.records import MaskRecords, records_to_output
from .predictor import BUILDER_ARGUMENTS, SAM2ImagePredictor
from .transforms import _rgb_array

_D = SAM2_EVERYTHING


class SAM2AutomaticMaskGenerator(AutoMaskGenerator):
    """Generate masks for a whole image from a grid of point prompts with a SAM 2 model.

    Args:
        model: a SAM 2 model (:func:`tijeras.sam2.build_sam2`).
        mask_threshold: logit threshold of the masks.
        use_m2m: refine every candidate once with its own low-res logits as mask prompt.
        multimask_output: three candidates per point (else one).

    The other arguments are those of
    :class:`~tijeras.automatic.generator.SamAutomaticMaskGenerator`.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        points_per_side: int | None = _D.points_per_side,
        points_per_batch: int = _D.points_per_batch,
        pred_iou_thresh: float = _D.pred_iou_thresh,
        stability_score_thresh: float = _D.stability_score_thresh,
        stability_score_offset: float = _D.stability_score_offset,
        mask_threshold: float = _D.mask_threshold,
        box_nms_thresh: float = _D.box_nms_thresh,
        crop_n_layers: int = _D.crop_n_layers,
        crop_nms_thresh: float = _D.crop_nms_thresh,
        crop_overlap_ratio: float = _D.crop_overlap_ratio,
        crop_n_points_downscale_factor: int = _D.crop_n_points_downscale_factor,
        point_grids: list[np.ndarray] | None = None,
        min_mask_region_area: int = _D.min_mask_region_area,
        output_mode: str = "binary_mask",
        use_m2m: bool = _D.use_m2m,
        multimask_output: bool = _D.multimask_output,
    ) -> None:
        options = meta_options(
            SAM2_EVERYTHING,
            points_per_side,
            point_grids,
            points_per_batch=points_per_batch,
            pred_iou_thresh=pred_iou_thresh,
            stability_score_thresh=stability_score_thresh,
            stability_score_offset=stability_score_offset,
            mask_threshold=float(mask_threshold),
            box_nms_thresh=box_nms_thresh,
            crop_n_layers=crop_n_layers,
            crop_nms_thresh=crop_nms_thresh,
            crop_overlap_ratio=crop_overlap_ratio,
            crop_n_points_downscale_factor=crop_n_points_downscale_factor,
            min_mask_region_area=min_mask_region_area,
            use_m2m=use_m2m,
            multimask_output=multimask_output,
        )
        # Meta's generator gives its predictor these areas and no mask threshold (so holes
        # are found around the predictor's default threshold, 0).
        predictor = SAM2ImagePredictor(
            model, max_hole_area=min_mask_region_area, max_sprinkle_area=min_mask_region_area
        )
        super().__init__(
            model,
            options,
            output_mode=output_mode,
            point_grids=point_grids,
            low_res_cleanup=_cleanup(predictor),
        )
        self.predictor = predictor

    @classmethod
    def from_pretrained(cls, model_id: str, **kwargs: Any) -> SAM2AutomaticMaskGenerator:
        """A generator for a model by Hugging Face id (``"facebook/sam2.1-hiera-tiny"``) or
        registered name, its weights found in tijeras' cache (see
        :func:`tijeras.sam2.build.build_sam2_hf`).

        ``device``, ``mode``, ``hydra_overrides_extra`` and ``apply_postprocessing`` go to the
        builder (Meta's defaults: ``device="cuda"``), every other keyword to the generator.
        """
        from .build import build_sam2_hf

        built = {k: kwargs.pop(k) for k in BUILDER_ARGUMENTS if k in kwargs}
        return cls(build_sam2_hf(model_id, **built), **kwargs)

    def generate(self, image: Any, embedding: Any = None) -> list[dict[str, Any]]:
        """Masks for an H x W x 3 uint8 RGB array (or PIL image): Meta's records."""
        return super().generate(_rgb_array(image), embedding)

    def to_output(self, data: MaskRecords) -> list[dict[str, Any]]:
        """Meta's records with the types Meta's SAM 2 generator gives them: its columns end
        as float32 arrays, so ``bbox``, ``crop_box`` and ``point_coords`` hold float32 values
        as Python floats."""
        data.boxes = data.boxes.float()
        data.crop_boxes = data.crop_boxes.float()
        data.points = data.points.float().double()
        return records_to_output(data, self.output_mode, meta_types=True)


def _cleanup(predictor: SAM2ImagePredictor) -> Any:
    """The predictor's low-res post-processing (holes and specks) as a generator step, read
    from the predictor when it runs (as Meta's generator reads its predictor's settings).
    Being always given, it also keeps the clean-up of final masks (SAM's meaning of
    ``min_mask_region_area``) from running, as in Meta's SAM 2 generator."""
    transforms = predictor._transforms

    def cleanup(low_res: torch.Tensor) -> torch.Tensor:
        from ..models.sam2.holes import fill_holes_and_sprinkles

        if transforms.max_hole_area <= 0 and transforms.max_sprinkle_area <= 0:
            return low_res
        return fill_holes_and_sprinkles(
            low_res,
            transforms.mask_threshold,
            transforms.max_hole_area,
            transforms.max_sprinkle_area,
        )

    return cleanup
