"""A program written for Meta's ``segment_anything``, in the style of its predictor notebook:
a point, a refinement with the previous logits, a box, a box with a negative point, a batch
of boxes through ``predict_torch``, and the stored-embedding recipe (assigning ``features``,
``original_size``, ``input_size`` and ``is_image_set``)."""

import cv2
import numpy as np
import torch
from segment_anything import SamPredictor, sam_model_registry


def main(image_path, model_type, checkpoint, device="cpu"):
    image = cv2.imread(str(image_path))
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    sam = sam_model_registry[model_type](checkpoint=checkpoint)
    sam.to(device=device)
    predictor = SamPredictor(sam)
    predictor.set_image(image)
    results = {"sizes": (predictor.original_size, predictor.input_size)}

    input_point = np.array([[150, 100]])
    input_label = np.array([1])
    masks, scores, logits = predictor.predict(
        point_coords=input_point, point_labels=input_label, multimask_output=True
    )
    results["point"] = (masks, scores, logits)

    mask_input = logits[np.argmax(scores), :, :]
    results["refined"] = predictor.predict(
        point_coords=np.array([[150, 100], [220, 60]]),
        point_labels=np.array([1, 1]),
        mask_input=mask_input[None, :, :],
        multimask_output=False,
    )

    box = np.array([60, 40, 240, 170])
    results["box"] = predictor.predict(
        point_coords=None, point_labels=None, box=box[None, :], multimask_output=False
    )
    results["box_and_point"] = predictor.predict(
        point_coords=np.array([[200, 120]]),
        point_labels=np.array([0]),
        box=box,
        multimask_output=False,
    )

    input_boxes = torch.tensor(
        [[20, 20, 120, 100], [100, 50, 280, 190], [10, 120, 90, 195]], device=predictor.device
    )
    transformed_boxes = predictor.transform.apply_boxes_torch(input_boxes, image.shape[:2])
    masks, scores, logits = predictor.predict_torch(
        point_coords=None, point_labels=None, boxes=transformed_boxes, multimask_output=False
    )
    results["boxes_batch"] = (
        masks.cpu().numpy(),
        scores.cpu().numpy(),
        logits.cpu().numpy(),
    )

    embedding = predictor.get_image_embedding().cpu().numpy()
    results["embedding"] = embedding

    # Later: the stored embedding is loaded into a fresh predictor without encoding again.
    stored = SamPredictor(sam)
    stored.reset_image()
    stored.features = torch.as_tensor(embedding, device=predictor.device)
    stored.original_size = image.shape[:2]
    stored.input_size = predictor.input_size
    stored.is_image_set = True
    results["stored"] = stored.predict(
        point_coords=input_point, point_labels=input_label, multimask_output=True
    )
    return results
