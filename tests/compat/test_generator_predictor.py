"""Item: a generator's ``.predictor`` is Meta's predictor class, so
``masks, scores, logits = generator.predictor.predict(...)`` runs as with Meta's package;
Meta's generator attributes can be assigned."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tijeras.compat.segment_anything import (
    SamAutomaticMaskGenerator,
    SamPredictor,
    sam_model_registry,
)
from tijeras.sam2 import SAM2AutomaticMaskGenerator, SAM2ImagePredictor, build_sam2

POINT = {"point_coords": np.array([[40, 30]]), "point_labels": np.array([1])}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return sam_model_registry["test-tiny"]()


def test_sam_generator_predictor_is_metas_class(model):
    image = (np.random.default_rng(0).random((60, 90, 3)) * 255).astype(np.uint8)
    generator = SamAutomaticMaskGenerator(model, points_per_side=2)
    assert type(generator.predictor) is SamPredictor
    generator.predictor.set_image(image)
    masks, _, logits = generator.predictor.predict(**POINT)
    direct = SamPredictor(model)
    direct.set_image(image)
    expected = direct.predict(**POINT)
    assert masks.shape == (3, 60, 90) and logits.shape == (3, 256, 256)
    np.testing.assert_array_equal(masks, expected[0])
    generator.generate(image)
    assert generator.predictor.is_image_set is False  # as Meta's, after generate


def test_generator_attributes_can_be_assigned(model):
    generator = SamAutomaticMaskGenerator(model, points_per_side=2)
    generator.pred_iou_thresh = 0.5
    generator.min_mask_region_area = 30
    assert (generator.options.pred_iou_thresh, generator.min_mask_region_area) == (0.5, 30)
    with pytest.raises(ValueError, match="pred_iou_thresh must be at most 1"):
        generator.pred_iou_thresh = 3.0


def test_generator_signature_is_metas():
    import inspect

    params = list(inspect.signature(SamAutomaticMaskGenerator).parameters)
    assert params[:3] == ["model", "points_per_side", "points_per_batch"]
    assert params[-1] == "output_mode"


def test_sam2_generator_predictor_is_metas_class():
    torch.manual_seed(0)
    model = build_sam2("sam2.1-hiera-tiny", None, device="cpu")
    generator = SAM2AutomaticMaskGenerator(model, points_per_side=2, min_mask_region_area=25)
    assert type(generator.predictor) is SAM2ImagePredictor
    # Meta's generator hands min_mask_region_area to its predictor, threshold left at 0.
    assert generator.predictor.max_hole_area == generator.predictor.max_sprinkle_area == 25
    assert generator.predictor.mask_threshold == 0.0
    logits = torch.zeros(1, 1, 256, 256)
    logits[..., 100:110, 100:110] = 1.0  # a 100-pixel region: kept
    logits[..., 10:13, 10:13] = 1.0  # a 9-pixel speck: removed
    cleaned = generator.low_res_cleanup(logits)
    assert (cleaned[..., 100:110, 100:110] > 0).all() and (cleaned[..., 10:13, 10:13] < 0).all()
    # Without an area the step changes nothing, and SAM's final-mask clean-up never runs
    # (Meta's SAM 2 generator does not call it), even if the attribute is assigned later.
    plain = SAM2AutomaticMaskGenerator(model, points_per_side=2)
    assert plain.low_res_cleanup(logits) is logits
    plain.min_mask_region_area = 50
    assert plain.low_res_cleanup is not None
