"""A program written for Meta's ``sam2``, in the style of its image predictor notebook: a PIL
image, a click and its refinement, a box, a batch of boxes, a batch of images; the hole and
speck clean-up of the predictor; and the internals published fine-tuning code reads
(``_prep_prompts``, ``_features``, ``_transforms``, ``model.forward_image``...)."""

import numpy as np
import torch
from PIL import Image
from sam2.build_sam import build_sam2
from sam2.sam2_image_predictor import SAM2ImagePredictor


def main(image, checkpoint, model_cfg="configs/sam2.1/sam2.1_hiera_t.yaml", device="cpu"):
    sam2_model = build_sam2(model_cfg, checkpoint, device=device)
    predictor = SAM2ImagePredictor(sam2_model)
    pil = Image.fromarray(image)
    results = {}
    with torch.inference_mode():
        predictor.set_image(pil)
        masks, scores, logits = predictor.predict(
            point_coords=np.array([[150, 100]]),
            point_labels=np.array([1]),
            multimask_output=True,
        )
        results["point"] = (masks, scores, logits)
        mask_input = logits[np.argmax(scores), :, :]
        results["refined"] = predictor.predict(
            point_coords=np.array([[150, 100], [220, 60]]),
            point_labels=np.array([1, 1]),
            mask_input=mask_input[None, :, :],
            multimask_output=False,
        )
        results["box"] = predictor.predict(box=np.array([60, 40, 240, 170]), multimask_output=False)
        results["boxes"] = predictor.predict(
            box=np.array([[20, 20, 120, 100], [100, 50, 280, 190]]), multimask_output=False
        )

        # What fine-tuning scripts read before running the decoder themselves.
        _, coords, labels, _ = predictor._prep_prompts(
            np.array([[150, 100]]),
            np.array([1]),
            box=None,
            mask_logits=None,
            normalize_coords=True,
        )
        results["prep"] = (coords.cpu().numpy(), labels.cpu().numpy())
        feats = predictor._features
        results["features"] = (
            feats["image_embed"].cpu().numpy(),
            [f.cpu().numpy() for f in feats["high_res_feats"]],
        )
        results["model_names"] = (
            sam2_model.directly_add_no_mem_embed,
            sam2_model.use_high_res_features_in_sam,
            sam2_model.num_feature_levels,
            sam2_model.sam_image_embedding_size,
            sam2_model.hidden_dim,
            sam2_model.multimask_output_in_sam,
            sam2_model.pred_obj_scores,
            predictor._bb_feat_sizes,
        )
        backbone = sam2_model.forward_image(predictor._transforms(pil)[None].to(device))
        results["backbone"] = [f.cpu().numpy() for f in backbone["backbone_fpn"]]
        results["pos"] = [f.cpu().numpy() for f in backbone["vision_pos_enc"]]

        cleaner = SAM2ImagePredictor(sam2_model, max_hole_area=40.0, max_sprinkle_area=40.0)
        cleaner.set_image(image)
        results["cleaned"] = cleaner.predict(
            point_coords=np.array([[150, 100]]), point_labels=np.array([1])
        )

        predictor.set_image_batch([image, np.ascontiguousarray(image[::-1])])
        results["batch"] = predictor.predict_batch(
            point_coords_batch=[np.array([[150, 100]]), np.array([[100, 50]])],
            point_labels_batch=[np.array([1]), np.array([1])],
            box_batch=None,
            multimask_output=True,
        )
    return results
