"""Parity of tijeras' SAM 3 with transformers' ``Sam3Model`` / ``Sam3TrackerModel``.

Both sides get the same perturbed random weights (a tiny configuration: every component, few
layers, narrow widths, 224 px), tijeras through its loader of the ``facebook/sam3`` file layout,
and the same real photos. Tolerances (fp32): per module (backbone map, pyramid levels, text
features) ``atol=1e-5, rtol=1e-4``; whole-model outputs (query logits, presence logits, boxes,
mask logits, IoU and object scores) within ``1e-4`` of the reference's largest magnitude; masks
thresholded at 0 agree at IoU >= 0.99.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("transformers", reason="SAM 3 parity needs transformers (test-only)")

from models.sam3.sam3_reference import (
    hf_state_dict,
    photo,
    pixels,
    reference_models,
    tracker_embeddings,
)

from tijeras.errors import PromptError
from tijeras.models.sam3.checkpoint import remap
from tijeras.models.sam3.config import SAM3_TEST_TINY
from tijeras.models.sam3.model import Sam3Model
from tijeras.types import ImageEmbedding, PromptBatch

pytestmark = pytest.mark.parity
REL = 1e-4


@pytest.fixture(scope="module")
def pair():
    torch.set_num_threads(2)
    detector, tracker = reference_models()
    ours = Sam3Model(SAM3_TEST_TINY).eval()
    ours.load_state_dict(remap(hf_state_dict(detector, tracker)), strict=True)
    return detector, tracker, ours


@pytest.fixture(scope="module", params=["groceries.jpg", "dogs.jpg"])
def encoded(request, pair):
    detector, _, ours = pair
    x = pixels(photo(request.param), ours)
    with torch.no_grad():
        reference = detector.vision_encoder(x)
    features, extra = ours.encode_image(x)
    embedding = ImageEmbedding(features, (224, 224), (224, 224), "sam3-test-tiny", extra)
    return x, reference, ours.prepare(embedding)


def assert_close_rel(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    scale = max(1.0, float(expected.abs().max()))
    err = float((actual - expected).abs().max())
    assert err <= REL * scale, f"{what}: max error {err:.3g} over magnitude {scale:.3g}"


def mask_iou(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a > 0, b > 0
    union = (a | b).sum().item()
    return 1.0 if union == 0 else (a & b).sum().item() / union


def test_backbone_and_pyramid(pair, encoded):
    _, _, ours = pair
    x, reference, prepared = encoded
    trunk = ours.backbone.vision_backbone.trunk(x)
    expected = reference.last_hidden_state.view(trunk.shape)
    torch.testing.assert_close(trunk, expected, atol=1e-5, rtol=1e-4)
    extra = prepared.embedding.extra
    levels = [extra["fpn_0"], extra["fpn_1"], prepared.embedding.features]
    for level, ref in zip(levels, reference.fpn_hidden_states[:3]):
        torch.testing.assert_close(level, ref, atol=1e-5, rtol=1e-4)


def test_text_features(pair):
    detector, _, ours = pair
    ids, valid = ours.tokenizer(["tomato", "a yellow school bus"])
    with torch.no_grad():
        ref = detector.get_text_features(input_ids=ids, attention_mask=valid.long()).pooler_output
    tokens, ours_valid = ours.encode_text(["tomato", "a yellow school bus"])
    assert torch.equal(ours_valid, valid[:, : ours_valid.shape[1]])
    torch.testing.assert_close(tokens[ours_valid], ref[valid], atol=1e-5, rtol=1e-4)


CASES = {
    "text": {"text": "tomato", "boxes": None, "labels": None},
    "exemplar": {"text": None, "boxes": [[40.0, 60.0, 120.0, 150.0]], "labels": [1]},
    "text+negative": {
        "text": "red apple",
        "boxes": [[40.0, 60.0, 120.0, 150.0], [10.0, 10.0, 50.0, 70.0]],
        "labels": [1, 0],
    },
}


@pytest.mark.parametrize("case", list(CASES))
def test_concept_prompts(pair, encoded, case):
    detector, _, ours = pair
    _, reference, prepared = encoded
    spec = CASES[case]
    text = spec["text"] or "visual"
    ids, valid = ours.tokenizer([text])
    kwargs = {}
    given = None if spec["text"] is None else (text,)
    batch = PromptBatch(text=given) if spec["boxes"] is None else None
    if spec["boxes"] is not None:
        xyxy = torch.tensor([spec["boxes"]])
        labels = torch.tensor([spec["labels"]])
        x0, y0, x1, y1 = (xyxy / 224).unbind(-1)
        kwargs = {
            "input_boxes": torch.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], -1),
            "input_boxes_labels": labels,
        }
        batch = PromptBatch(text=given, exemplar_boxes=xyxy, exemplar_labels=labels)
    with torch.no_grad():
        ref = detector(
            vision_embeds=reference, input_ids=ids, attention_mask=valid.long(), **kwargs
        )
    out = ours.decode(prepared, batch, multimask=False)
    assert_close_rel(out.extra["pred_logits"], ref.pred_logits, "query logits")
    assert_close_rel(out.extra["presence_logits"], ref.presence_logits, "presence logits")
    assert_close_rel(out.extra["boxes"], ref.pred_boxes * 224, "boxes (pixels)")
    assert_close_rel(out.low_res_logits, ref.pred_masks, "mask logits")
    assert_close_rel(out.extra["semantic_logits"], ref.semantic_seg, "semantic logits")
    scores = ref.pred_logits.sigmoid() * ref.presence_logits.sigmoid()
    assert_close_rel(out.iou_scores, scores, "scores")
    for q in range(ref.pred_masks.shape[1]):
        assert mask_iou(out.low_res_logits[0, q], ref.pred_masks[0, q]) >= 0.99


@pytest.mark.parametrize("prompt", ["point", "box", "point+box"])
def test_interactive_head(pair, encoded, prompt):
    _, tracker, ours = pair
    x, _, prepared = encoded
    points = torch.tensor([[[100.0, 120.0], [30.0, 40.0]]])
    labels = torch.tensor([[1, 0]])
    box = torch.tensor([[40.0, 60.0, 160.0, 190.0]])
    kw: dict = {}
    batch: dict = {}
    if "point" in prompt:
        kw.update(input_points=points[:, None], input_labels=labels[:, None])
        batch.update(points=points, labels=labels)
    if "box" in prompt:
        kw.update(input_boxes=box[:, None])
        batch.update(boxes=box)
    multimask = prompt == "point"
    with torch.no_grad():
        ref = tracker(
            image_embeddings=tracker_embeddings(tracker, x), multimask_output=multimask, **kw
        )
    out = ours.decode(prepared, PromptBatch(**batch), multimask=multimask)
    assert_close_rel(out.low_res_logits, ref.pred_masks[:, 0], "mask logits")
    assert_close_rel(out.iou_scores, ref.iou_scores[:, 0], "IoU scores")
    assert_close_rel(out.object_scores, ref.object_score_logits[:, 0], "object scores")
    for c in range(out.low_res_logits.shape[1]):
        assert mask_iou(out.low_res_logits[0, c], ref.pred_masks[0, 0, c]) >= 0.99


def test_phrase_errors_name_the_context_length(pair, encoded):
    _, _, ours = pair
    _, _, prepared = encoded
    for phrase in ("", "   ", " ".join(["tomato"] * 40)):
        with pytest.raises(PromptError, match="context length is 32"):
            ours.decode(prepared, PromptBatch(text=(phrase,)), multimask=False)


def test_no_match_gives_zero_instances(pair, encoded):
    _, _, ours = pair
    _, _, prepared = encoded
    found = ours.detect(prepared, PromptBatch(text=("zebra crossing",)), threshold=0.999)
    assert found.masks[0].shape == (0, 64, 64)
    assert len(found.keep[0]) == 0
    every = ours.detect(prepared, PromptBatch(text=("zebra crossing",)), threshold=0.0)
    assert every.masks[0].shape == (16, 64, 64)
