"""``tijeras.sam3``: Meta's builder and processor API, against transformers' post-processing.

The processor's masks, boxes and scores for a text prompt, an exemplar box and text with a
counter-example are compared with ``Sam3ImageProcessor.post_process_instance_segmentation`` on
transformers' outputs for the same weights and pixels: the same instances, scores and boxes
within 1e-4 of their magnitude, masks at IoU >= 0.99 (transformers resizes probabilities,
Meta's processor logits; both threshold at 0.5).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tijeras.errors import CheckpointError, PromptError
from tijeras.sam3 import Sam3Processor, build_sam3_image_model


@pytest.fixture(scope="module")
def tiny():
    torch.set_num_threads(2)
    return build_sam3_image_model(model_name="sam3-test-tiny", load_from_HF=False)


def test_unknown_keyword_is_named(tiny):
    with pytest.raises(TypeError, match="checkpoint_pth"):
        build_sam3_image_model(checkpoint_pth="x.pt")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="threshold"):
        Sam3Processor(tiny, threshold=0.3)  # type: ignore[call-arg]


def test_gated_weights_missing_is_explained(tmp_path, monkeypatch):
    monkeypatch.setenv("TIJERAS_CACHE", str(tmp_path))
    with pytest.raises(CheckpointError, match="gated"):
        build_sam3_image_model()


def test_processor_flow_and_errors(tiny):
    processor = Sam3Processor(tiny, confidence_threshold=0.5)
    with pytest.raises(PromptError, match="set_image"):
        processor.set_text_prompt("tomato", {})
    image = np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8)
    state = processor.set_image(image)
    assert (state["original_height"], state["original_width"]) == (90, 120)
    with pytest.raises(PromptError, match="context length is 32"):
        processor.set_text_prompt("", state)
    processor.set_confidence_threshold(1.0, state)
    state = processor.set_text_prompt("a phrase that matches nothing", state)
    assert state["masks"].shape == (0, 1, 90, 120) and state["boxes"].shape == (0, 4)
    assert state["scores"].shape == (0,)
    processor.set_confidence_threshold(0.0, state)  # answered again: every query
    assert state["masks"].shape == (16, 1, 90, 120)
    processor.reset_all_prompts(state)
    assert "masks" not in state and "embedding" in state
    masks, scores, logits = processor.predict_inst(
        state, point_coords=[[60, 45]], point_labels=[1], multimask_output=True
    )
    assert masks.shape == (3, 90, 120) and scores.shape == (3,) and logits.shape == (3, 64, 64)


CASES = {
    "text": {"text": "tomato", "boxes": []},
    "exemplar": {"text": None, "boxes": [([0.4, 0.5, 0.3, 0.35], True)]},
    "text+negative": {"text": "red apple", "boxes": [([0.2, 0.2, 0.15, 0.2], False)]},
}


@pytest.mark.parity
@pytest.mark.parametrize("case", list(CASES))
def test_matches_transformers_post_processing(case):
    pytest.importorskip("transformers", reason="needs transformers (test-only)")
    from models.sam3.sam3_reference import hf_state_dict, photo, reference_models
    from transformers.models.sam3 import Sam3ImageProcessor

    from tijeras.models.sam3.checkpoint import remap

    detector, tracker = reference_models()
    model = build_sam3_image_model(model_name="sam3-test-tiny", load_from_HF=False)
    model.load_state_dict(remap(hf_state_dict(detector, tracker)))
    image = photo("truck.jpg")[:, :200]  # not square: boxes and masks are rescaled
    spec = CASES[case]
    processor = Sam3Processor(model, confidence_threshold=0.0)
    state = processor.set_image(image)
    if spec["text"]:
        state = processor.set_text_prompt(spec["text"], state)
    for box, label in spec["boxes"]:
        state = processor.add_geometric_prompt(box, label, state)
    # halfway between two middle scores: a threshold equal to a score would keep or drop it by
    # float rounding on either side
    ranked = state["scores"].sort().values
    middle = len(ranked) // 2
    threshold = float(ranked[middle - 1 : middle + 1].mean())
    state = processor.set_confidence_threshold(threshold, state)

    ids, valid = model.tokenizer([spec["text"] or "visual"])
    kw = {}
    if spec["boxes"]:
        kw = {
            "input_boxes": torch.tensor([[b for b, _ in spec["boxes"]]]),
            "input_boxes_labels": torch.tensor([[int(lab) for _, lab in spec["boxes"]]]),
        }
    x = state["embedding"].embedding  # same pixels: compare the post-processing
    from torchvision.transforms.v2 import functional as TF

    pixels = TF.resize(torch.from_numpy(image).permute(2, 0, 1), [224, 224], antialias=True)
    with torch.no_grad():
        out = detector(
            pixel_values=model.preprocess(pixels[None].float()),
            input_ids=ids,
            attention_mask=valid.long(),
            **kw,
        )
    ref = Sam3ImageProcessor().post_process_instance_segmentation(
        out, threshold=threshold, mask_threshold=0.5, target_sizes=[image.shape[:2]]
    )[0]
    assert x.original_size == image.shape[:2]
    assert len(ref["scores"]) == len(state["scores"]) > 0
    torch.testing.assert_close(state["scores"], ref["scores"], atol=1e-5, rtol=1e-4)
    scale = float(ref["boxes"].abs().max())
    assert float((state["boxes"] - ref["boxes"]).abs().max()) <= 1e-4 * scale
    for ours, theirs in zip(state["masks"][:, 0], ref["masks"].bool()):
        union = (ours | theirs).sum().item()
        assert union == 0 or (ours & theirs).sum().item() / union >= 0.99
