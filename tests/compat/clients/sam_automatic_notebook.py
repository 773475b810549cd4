"""A program written for Meta's ``segment_anything``, in the style of its automatic mask
generator notebook: the generator with explicit settings, then with crop layers and the
small-region clean-up, masks sorted by area; and the generator's own predictor reused for a
click, as user code does."""

import numpy as np
from segment_anything import SamAutomaticMaskGenerator, sam_model_registry


def main(image, model_type, checkpoint, device="cpu"):
    sam = sam_model_registry[model_type](checkpoint=checkpoint)
    sam.to(device=device)

    mask_generator = SamAutomaticMaskGenerator(
        sam,
        points_per_side=5,
        pred_iou_thresh=0.0,
        stability_score_thresh=0.5,
        stability_score_offset=0.05,
        box_nms_thresh=1.0,
    )
    masks = mask_generator.generate(image)

    mask_generator_2 = SamAutomaticMaskGenerator(
        model=sam,
        points_per_side=4,
        pred_iou_thresh=0.0,
        stability_score_thresh=0.5,
        stability_score_offset=0.05,
        box_nms_thresh=1.0,
        crop_n_layers=1,
        crop_nms_thresh=1.0,
        crop_n_points_downscale_factor=2,
        min_mask_region_area=100,
    )
    masks2 = mask_generator_2.generate(image)
    masks2 = sorted(masks2, key=lambda m: m["area"], reverse=True)

    predictor = mask_generator.predictor
    predictor.set_image(image)
    click = predictor.predict(
        point_coords=np.array([[150, 100]]), point_labels=np.array([1]), multimask_output=True
    )
    return {"masks": masks, "masks_crops": masks2, "click": click}
