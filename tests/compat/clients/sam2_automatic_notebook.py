"""A program written for Meta's ``sam2``, in the style of its automatic mask generator
notebook: the generator with the notebook's kind of settings (``points_per_batch``,
``stability_score_offset``, ``min_mask_region_area`` and ``use_m2m`` set; the filters opened
for random weights), and its predictor used for a click afterwards."""

import numpy as np
from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
from sam2.build_sam import build_sam2


def main(image, checkpoint, model_cfg="configs/sam2.1/sam2.1_hiera_t.yaml", device="cpu"):
    sam2 = build_sam2(model_cfg, checkpoint, device=device, apply_postprocessing=False)
    mask_generator = SAM2AutomaticMaskGenerator(
        model=sam2,
        points_per_side=4,
        points_per_batch=16,
        pred_iou_thresh=0.0,
        stability_score_thresh=0.0,
        stability_score_offset=0.7,
        box_nms_thresh=1.0,
        min_mask_region_area=25,
        use_m2m=True,
    )
    masks = mask_generator.generate(image)
    predictor = mask_generator.predictor
    predictor.set_image(image)
    click = predictor.predict(point_coords=np.array([[150, 100]]), point_labels=np.array([1]))
    return {"masks": masks, "click": click}
