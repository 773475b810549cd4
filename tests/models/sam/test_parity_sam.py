"""Parity with Meta's ``segment_anything`` on perturbed random weights and a real photo.

Identical outputs on random weights mean identical outputs on the real checkpoints: the official
model is built with random weights, every parameter is perturbed (so zero-initialised ones such as
the relative positions and the positional embedding matter), the state_dict is saved as a .pth
file and loaded through tijeras.
Tolerances: those of :mod:`helpers.parity`. Every test runs on ``test-tiny`` (Meta's classes at
toy widths, the same code paths) in the default suite and on ViT-B in the slow one.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

sa = pytest.importorskip("segment_anything", reason="parity needs Meta's segment-anything package")

from helpers.parity import (
    SAM_PROMPTS,
    assert_close,
    assert_masks_match,
    check_mask_input,
    check_predict,
    perturbed_sam_pair,
    sam_model_params,
)

import tijeras

pytestmark = pytest.mark.parity


@pytest.fixture(scope="module", params=sam_model_params())
def models(request, tmp_path_factory):
    return perturbed_sam_pair(request.param, tmp_path_factory.mktemp("ckpt"))


@pytest.fixture(scope="module")
def predictors(models, truck_image):
    ref, ours = models
    rp, op = sa.SamPredictor(ref), tijeras.SamPredictor(ours)
    rp.set_image(truck_image)
    op.set_image(truck_image)
    return rp, op


def test_image_embedding_matches(predictors):
    rp, op = predictors
    assert op.original_size == rp.original_size
    assert op.input_size == rp.input_size
    assert_close(op.get_image_embedding(), rp.get_image_embedding(), "image embedding")


CASES = SAM_PROMPTS


@pytest.mark.parametrize("multimask", [True, False], ids=["multimask", "single"])
@pytest.mark.parametrize("case", list(CASES))
def test_predict_matches(predictors, case, multimask):
    rp, op = predictors
    check_predict(rp, op, dict(CASES[case], multimask_output=multimask), case, same_dtypes=True)


def test_mask_input_from_previous_prediction(predictors):
    check_mask_input(*predictors, CASES["one positive point"])


def test_predict_torch_batch_of_boxes(predictors):
    rp, op = predictors
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 1500, size=(16, 2))
    boxes = torch.tensor(np.concatenate([xy, xy + rng.uniform(20, 300, (16, 2))], 1)).float()
    boxes[:, 1::2] = boxes[:, 1::2].clamp(max=1199)
    ref_boxes = rp.transform.apply_boxes_torch(boxes, rp.original_size)
    our_boxes = op.transform.apply_boxes_torch(boxes, op.original_size)
    assert torch.equal(ref_boxes, our_boxes)
    with torch.no_grad():
        ref_logits, ref_iou, ref_low = rp.predict_torch(
            None, None, boxes=ref_boxes, return_logits=True
        )
    masks, iou, low = op.predict_torch(None, None, boxes=our_boxes)
    assert masks.shape == ref_logits.shape
    assert_close(low, ref_low, "batched low-res logits")
    assert_close(iou, ref_iou, "batched IoU")
    assert_masks_match(masks.numpy(), ref_logits.numpy())


def test_public_api_signatures_match():
    for name in (
        "set_image",
        "set_torch_image",
        "predict",
        "predict_torch",
        "get_image_embedding",
        "reset_image",
    ):
        ours = inspect.signature(getattr(tijeras.SamPredictor, name))
        ref = inspect.signature(getattr(sa.SamPredictor, name))
        assert list(ours.parameters) == list(ref.parameters), name
        for p in ref.parameters.values():
            assert ours.parameters[p.name].default == p.default, (name, p.name)
    assert set(sa.sam_model_registry) <= set(tijeras.sam_model_registry)


@pytest.mark.parametrize("name", ["vit_l", "vit_h"])
def test_large_models_state_dict_compatible(name):
    with torch.device("meta"):
        ref = sa.sam_model_registry[name]()
        ours = tijeras.build_model(name, device="meta")
    ref_shapes = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    our_shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert our_shapes == ref_shapes
