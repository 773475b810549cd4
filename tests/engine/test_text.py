"""Concept prompts through :class:`tijeras.Predictor` (``segment_text``, ``segment_exemplar``) on
a random-weight ``sam3-test-tiny`` with a confident presence token.

The predictor decodes every query through the contract (``Predictor.decode``) and keeps those
above the threshold; :meth:`Sam3Model.detect` makes masks for the kept queries only. The two are
held to the same instances: the same queries and scores (within 1e-6), boxes within 1e-4 px and
the same masks except where the reference logit is within 1e-4 of its largest magnitude from the
threshold (the mask products of all queries and of the kept ones round differently).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.data import data_path
from helpers.parity import LOGIT_BAND
from helpers.sam3 import confident_tiny_sam3

import tijeras
from tijeras.errors import PromptError
from tijeras.io import load_image
from tijeras.types import Instances, PromptBatch


@pytest.fixture(scope="module")
def predictor() -> tijeras.Predictor:
    predictor = tijeras.Predictor(confident_tiny_sam3())
    predictor.set_image(load_image(data_path("sam_demo_images", "images", "groceries.jpg")))
    return predictor


def _reference(predictor: tijeras.Predictor, prompts: PromptBatch, threshold: float):
    """The instances as :meth:`Sam3Model.detect` finds them, in original pixels."""
    emb = predictor.embedding
    h, w = emb.original_size
    found = predictor.model.detect(predictor.prepared, prompts, threshold)
    keep = found.keep[0]
    order = found.scores[0, keep].argsort(descending=True)
    boxes = found.boxes[0, keep[order]] * torch.tensor([w, h, w, h])
    low = found.masks[0][order][None]
    logits = predictor.model.postprocess_masks(low, emb.input_size, emb.original_size)[0]
    return found.scores[0, keep[order]], boxes.clamp(min=0), logits.numpy()


def _assert_same(instances: Instances, reference) -> None:
    scores, boxes, logits = reference
    assert len(instances) == len(scores)
    np.testing.assert_allclose(instances.scores, scores.numpy(), atol=1e-6, rtol=0)
    h, w = instances.masks.shape[-2:]
    expected = torch.minimum(boxes, torch.tensor([w, h, w, h], dtype=boxes.dtype))
    np.testing.assert_allclose(instances.boxes, expected.numpy(), atol=1e-4, rtol=0)
    assert instances.masks.shape == logits.shape
    if len(logits):
        sure = np.abs(logits) > LOGIT_BAND * np.abs(logits).max()
        assert np.array_equal(instances.masks[sure], logits[sure] > 0)


def test_text_prompt_gives_the_detectors_instances_in_image_pixels(predictor) -> None:
    found = predictor.segment_text("red apple")
    assert isinstance(found, Instances) and found.text == "red apple"
    assert len(found) >= 2  # the confident presence token lets some queries pass 0.5
    assert found.masks.shape == (len(found), 534, 800) and found.masks.dtype == np.bool_
    assert found.boxes.shape == (len(found), 4) and found.boxes.dtype == np.float32
    assert np.all(found.scores > 0.5) and np.all(np.diff(found.scores) <= 0)  # best first
    assert np.all(found.boxes[:, 2:] >= found.boxes[:, :2])
    assert np.all(found.boxes <= [800, 534, 800, 534]) and np.all(found.boxes >= 0)
    assert 0.9 < found.presence <= 1.0
    _assert_same(found, _reference(predictor, PromptBatch(text=("red apple",)), 0.5))


def test_exemplar_and_text_with_a_counter_example(predictor) -> None:
    box = [300.0, 200.0, 420.0, 330.0]
    alone = predictor.segment_exemplar(box, threshold=0.3)
    assert alone.text is None
    ih, iw = predictor.embedding.input_size
    scale = torch.tensor([iw / 800, ih / 534] * 2)
    prompts = PromptBatch(
        exemplar_boxes=(torch.tensor([box]) * scale)[None],
        exemplar_labels=torch.tensor([[1]]),
    )
    _assert_same(alone, _reference(predictor, prompts, 0.3))

    negative = predictor.segment_text("bottle", exemplars=[box], exemplar_labels=[0], threshold=0.3)
    prompts = PromptBatch(
        text=("bottle",),
        exemplar_boxes=(torch.tensor([box]) * scale)[None],
        exemplar_labels=torch.tensor([[0]]),
    )
    _assert_same(negative, _reference(predictor, prompts, 0.3))
    plain = predictor.segment_text("bottle", threshold=0.3)
    assert not np.array_equal(negative.scores, plain.scores)  # the counter-example counts


def test_a_phrase_that_matches_nothing_is_zero_instances(predictor) -> None:
    found = predictor.segment_text("a purple elephant", threshold=1.0)
    assert len(found) == 0
    assert found.masks.shape == (0, 534, 800) and found.boxes.shape == (0, 4)
    assert found.scores.shape == (0,)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: p.segment_text(""), "empty text prompt.*context length is 32"),
        (lambda p: p.segment_text("very " * 40), "40 tokens; the tokenizer's context length is 32"),
        (lambda p: p.segment_text(3), "must be a string"),
        (lambda p: p.segment_text("cat", threshold=1.5), r"threshold must be a number in \[0, 1\]"),
        (lambda p: p.segment_exemplar([10, 10, 900, 50]), "outside the 800x534 image"),
        (lambda p: p.segment_exemplar([10, 10, 10, 50]), "has no area"),
        (lambda p: p.segment_exemplar([10, 10, 50, 50], labels=[2]), "1 \\(an example\\)"),
        (lambda p: p.segment_text("cat", exemplar_labels=[1]), "without exemplar boxes"),
    ],
)
def test_bad_concept_prompts_are_named(predictor, call, message) -> None:
    with pytest.raises(PromptError, match=message):
        call(predictor)


def test_clicks_on_sam3_go_through_the_same_predict(predictor) -> None:
    pred = predictor.predict(point_coords=[[400, 260]], point_labels=[1])
    assert pred.masks.shape == (3, 534, 800) and pred.scores.shape == (3,)
    assert pred.low_res_logits.shape == (3, 64, 64)
    best = int(np.argmax(pred.scores))
    again = predictor.predict(
        point_coords=[[400, 260], [100, 100]],
        point_labels=[1, 0],
        mask_input=pred.low_res_logits[best][None],
        multimask_output=False,
    )
    assert again.masks.shape == (1, 534, 800)
    box = predictor.predict(box=[[300, 200, 420, 330], [0, 0, 200, 200]], multimask_output=False)
    assert box.masks.shape == (2, 1, 534, 800)


def test_a_family_without_text_refuses_it() -> None:
    torch.manual_seed(0)
    predictor = tijeras.Predictor(tijeras.build_model("test-tiny"))
    predictor.set_image(np.zeros((40, 60, 3), np.uint8))
    with pytest.raises(PromptError, match="does not take text prompts"):
        predictor.segment_text("tomato")
    with pytest.raises(PromptError, match="does not take exemplars prompts"):
        predictor.segment_exemplar([5, 5, 20, 20])
