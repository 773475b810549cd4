"""segment-geospatial, used as its users do, on whatever ``segment_anything`` is importable:
``SamGeo`` in automatic mode and in prompt mode, and ``SamGeoPredictor`` (a ``SamPredictor``
subclass that sets its model itself, without calling the parent's ``__init__``)."""

import numpy as np
from samgeo import SamGeo
from samgeo.samgeo import SamGeoPredictor
from segment_anything import sam_model_registry


def automatic(image, model_type, checkpoint):
    sam = SamGeo(
        model_type=model_type,
        checkpoint=str(checkpoint),
        device="cpu",
        automatic=True,
        sam_kwargs={
            "points_per_side": 6,
            "pred_iou_thresh": 0.0,
            "stability_score_thresh": 0.5,
            "stability_score_offset": 0.05,
            "box_nms_thresh": 1.0,
        },
    )
    sam.generate(image, output=None, foreground=True, unique=True)
    return {"masks": sam.masks, "objects": sam.objects}


def prompts(image, model_type, checkpoint):
    sam = SamGeo(model_type=model_type, checkpoint=str(checkpoint), device="cpu", automatic=False)
    sam.set_image(image)
    point = sam.predict(point_coords=[[150, 100], [220, 60]], point_labels=1, return_results=True)
    box = sam.predict(boxes=[60.0, 40.0, 240.0, 170.0], return_results=True)
    return {"point": point, "box": box}


def geo_predictor(image, model_type, checkpoint):
    model = sam_model_registry[model_type](checkpoint=str(checkpoint))
    predictor = SamGeoPredictor(model)
    predictor.set_image(image)
    return {
        "point": predictor.predict(point_coords=np.array([[150, 100]]), point_labels=np.array([1])),
        "box": predictor.predict(box=np.array([60, 40, 240, 170]), multimask_output=False),
    }
