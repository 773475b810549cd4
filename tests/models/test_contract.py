"""Every family behind one contract: conformance, the prompt-side dtype, isolated imports, and the
plain decoders held equal to the fast paths the predictor uses."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from helpers.parity import perturb

import tijeras
from tijeras.catalog import FAMILIES, REGISTRY, build_model, list_models
from tijeras.contract import InputSpec, SegmentationModel, Trainable
from tijeras.errors import PromptError
from tijeras.types import PromptBatch

# The smallest variant of each family.
SMALLEST = {
    "sam": "test-tiny",
    "sam2": "sam2-test-tiny",
    "sam3": "sam3-test-tiny",
    "classic": "classic",
}


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    built = {family: build_model(name) for family, name in SMALLEST.items()}
    for model in built.values():
        perturb(model)
    return built


def test_every_family_is_listed_and_implements_the_contract(models) -> None:
    assert {f.name for f in FAMILIES} == set(SMALLEST)
    for family in FAMILIES:
        assert family.specs, family.name
        for spec in family.specs:
            assert spec.everything is not None, spec.name
            assert spec.name in list_models()
    for family, model in models.items():
        assert isinstance(model, SegmentationModel), family
        assert isinstance(model.input_spec, InputSpec)
        assert model.everything_defaults == REGISTRY.get(SMALLEST[family]).everything
        assert model.name == SMALLEST[family]
    assert isinstance(models["sam"], Trainable) and isinstance(models["sam2"], Trainable)
    assert not isinstance(models["classic"], Trainable)
    assert not isinstance(models["sam3"], Trainable)


@pytest.mark.parametrize("name", ["sam2-test-tiny", "test-tiny-mobile", "classic"])
def test_decoder_dtype_for_every_family(name) -> None:
    """``decoder_dtype`` once reached into SAM's attributes (an AttributeError elsewhere)."""
    torch.manual_seed(0)
    model = build_model(name, dtype=torch.bfloat16, decoder_dtype=torch.float32)
    if name == "classic":
        tijeras.load_model(name, decoder_dtype="float32")  # the path the CLI and server take
    assert model.encoder_dtype == torch.bfloat16
    if name != "classic":
        assert model.dtype == torch.float32
    predictor = tijeras.Predictor(model)
    rng = np.random.default_rng(0)
    predictor.set_image(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    pred = predictor.predict(point_coords=np.array([[20.0, 30.0]]), point_labels=np.array([1]))
    assert pred.masks.shape[-2:] == (48, 64) and np.isfinite(pred.scores).all()


def test_a_family_imports_no_other_family() -> None:
    code = (
        "import sys, tijeras.models.{0}.model; "
        "print(sorted({{m.split('.')[2] for m in sys.modules if m.startswith('tijeras.models.')}}))"
    )
    families = (
        ("sam", "blocks sam"),
        ("sam2", "blocks sam2"),
        ("sam3", "blocks sam3"),
        ("classic", "classic"),
    )
    runs = {  # one process per family, all at once
        family: subprocess.Popen(
            [sys.executable, "-c", code.format(family)], stdout=subprocess.PIPE, text=True
        )
        for family, _ in families
    }
    for family, allowed in families:
        out, _ = runs[family].communicate()
        assert runs[family].returncode == 0, family
        assert eval(out) == sorted(allowed.split()), (family, out)


def test_predictor_refuses_what_is_not_a_model_and_kinds_a_family_lacks(models) -> None:
    with pytest.raises(TypeError, match="not a tijeras model"):
        tijeras.Predictor(torch.nn.Linear(2, 2))
    predictor = tijeras.Predictor(models["sam"])
    predictor.set_image(np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(PromptError, match="does not take text prompts"):
        predictor.decode(PromptBatch(text=("tomato",)))


@pytest.mark.parametrize("family", ["sam", "sam2"])
def test_a_mask_prompt_of_another_size_is_named(models, family) -> None:
    predictor = tijeras.Predictor(models[family])
    predictor.set_image(np.zeros((32, 32, 3), np.uint8))
    h, w = models[family].input_spec.mask_input_size
    with pytest.raises(PromptError) as err:
        predictor.decode(PromptBatch(masks=torch.zeros(2, 1, h + 4, w)))
    assert str(err.value) == (
        f"mask prompts of model {SMALLEST[family]} are B x 1 x {h} x {w}, got 2 x 1 x {h + 4} x {w}"
    )


def test_records_are_frozen(models) -> None:
    predictor = tijeras.Predictor(models["sam"])
    embedding = predictor.set_image(np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(AttributeError):
        embedding.features = torch.zeros(1)
    before = set(vars(embedding))
    predictor.predict(point_coords=np.array([[5.0, 5.0]]), point_labels=np.array([1]))
    assert set(vars(embedding)) == before  # decoding writes nothing into the caller's record


# ------------------------------------------------------------ plain decoders == fast paths
def _prompts(n: int) -> PromptBatch:
    gen = torch.Generator().manual_seed(3)
    return PromptBatch(
        points=torch.rand(n, 2, 2, generator=gen) * 900,
        labels=torch.tensor([[1, 0]] * n, dtype=torch.int),
        boxes=torch.tensor([[100.0, 150.0, 600.0, 700.0]] * n),
    )


PROMPT_KINDS = {
    "points and box": lambda: _prompts(3),
    "points, box and mask": lambda: PromptBatch(
        points=_prompts(3).points,
        labels=_prompts(3).labels,
        boxes=_prompts(3).boxes,
        masks=torch.randn(3, 1, 256, 256, generator=torch.Generator().manual_seed(4)),
    ),  # masks resized to the model's mask_input_size in the test
    "one point": lambda: PromptBatch(
        points=torch.tensor([[[400.0, 300.0]]]), labels=torch.tensor([[1]], dtype=torch.int)
    ),
}


@pytest.mark.parametrize("kind", list(PROMPT_KINDS))
@pytest.mark.parametrize("multimask", [True, False], ids=["multimask", "single"])
@pytest.mark.parametrize("family", ["sam", "sam2"])
def test_plain_decoder_equals_the_fast_path(models, family, multimask, kind) -> None:
    """The plain modules (training's ``decode_train``) compute what ``decode`` computes."""
    model = models[family]
    predictor = tijeras.Predictor(model)
    rng = np.random.default_rng(5)
    emb = predictor.set_image(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8))
    prompts = PROMPT_KINDS[kind]()
    if prompts.masks is not None:
        size = model.input_spec.mask_input_size
        prompts = replace(prompts, masks=torch.nn.functional.interpolate(prompts.masks, size))
    fast = predictor.decode(prompts, multimask=multimask)
    with torch.no_grad():
        plain = model.decode_train(emb.features, prompts, multimask=multimask, extra=emb.extra)
    scale = plain.low_res_logits.abs().max()
    torch.testing.assert_close(fast.low_res_logits, plain.low_res_logits, atol=1e-4 * scale, rtol=0)
    torch.testing.assert_close(fast.iou_scores, plain.iou_scores, atol=1e-5, rtol=1e-4)
    if family == "sam2":
        torch.testing.assert_close(fast.object_scores, plain.object_scores, atol=1e-5, rtol=1e-4)
