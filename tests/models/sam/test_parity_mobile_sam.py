"""MobileSAM parity with the official ``mobile_sam`` package on perturbed random weights.

The official model is built with random weights, every parameter is perturbed and every batch
norm gets random running statistics (so the folding of the normalisation into the convolutions
is exercised), the state_dict is saved as a .pth file and loaded strictly through tijeras.
Tolerances are those of the SAM parity tests: embeddings, low-res logits and IoU within 1e-4 of
the largest magnitude (the embeddings agree to about 3e-6 of it); masks identical except pixels
whose reference logit is within 1e-4 of the threshold; everything mode matched one to one at mask
IoU >= 0.99.
"""

from __future__ import annotations

import pytest
import torch

msam = pytest.importorskip("mobile_sam", reason="parity needs the official mobile_sam package")
pytest.importorskip("scipy.optimize", reason="matching needs scipy")

from helpers.parity import SAM_PROMPTS as CASES
from helpers.parity import (
    assert_close,
    check_mask_input,
    check_predict,
    encode_once,
    perturb,
)
from helpers.records import KEEP_ALL, NMS_ONLY, compare

import tijeras
from tijeras.automatic.generator import SamAutomaticMaskGenerator
from tijeras.catalog import REGISTRY, build_model
from tijeras.errors import CheckpointError
from tijeras.hub.checkpoint import load_state_dict_into
from tijeras.models.sam import tiny_vit

pytestmark = pytest.mark.parity


def randomize_batch_norm(model: torch.nn.Module, seed: int = 1) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                module.running_var.copy_(torch.rand(n, generator=gen) + 0.5)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    ref = msam.sam_model_registry["vit_t"]()
    perturb(ref)
    randomize_batch_norm(ref)
    # The official attention caches its gathered biases when switched to eval mode (which its
    # builder does before loading weights): switch again so they follow the perturbed table.
    ref.eval()
    path = tmp_path_factory.mktemp("ckpt") / "perturbed_mobile_sam.pt"
    torch.save(ref.state_dict(), path)
    return ref, path


@pytest.fixture(scope="module")
def models(checkpoint):
    ref, path = checkpoint
    return ref, tijeras.sam_model_registry["vit_t"](checkpoint=str(path))


@pytest.fixture(scope="module")
def predictors(models, truck_image):
    ref, ours = models
    rp, op = msam.SamPredictor(ref), tijeras.SamPredictor(ours)
    rp.set_image(truck_image)
    op.set_image(truck_image)
    return rp, op


def test_registry_names_and_model(models):
    _, ours = models
    assert set(msam.sam_model_registry) <= set(tijeras.sam_model_registry)
    assert ours.name == "mobile-sam"
    assert isinstance(ours.image_encoder, tiny_vit.TinyViT)
    assert ours.image_encoder.img_size == 1024
    assert not ours.training


def test_image_embedding_matches(predictors):
    rp, op = predictors
    assert op.original_size == rp.original_size
    assert op.input_size == rp.input_size
    ours, ref = op.get_image_embedding(), rp.get_image_embedding()
    assert tuple(ours.shape) == (1, 256, 64, 64)
    assert_close(ours, ref, "image embedding")


def test_unfused_path_matches_fused(models):
    _, ours = models
    x = ours.preprocess(torch.rand(1, 3, 1024, 768) * 255)
    tiny_vit._FUSION["enabled"] = False
    try:
        with torch.inference_mode():
            plain = ours.image_encoder(x)
    finally:
        tiny_vit._FUSION["enabled"] = True
    with torch.inference_mode():
        fused = ours.image_encoder(x)
    assert_close(fused, plain, "fused vs unfused embedding")


@pytest.mark.slow  # bfloat16 is emulated (slow) on CPUs without bfloat16 instructions
def test_bfloat16_embedding_close_to_float32(checkpoint, models):
    _, path = checkpoint
    _, ours = models
    bf16 = build_model("mobile-sam", checkpoint=path, dtype=torch.bfloat16)
    x = ours.preprocess(torch.rand(1, 3, 768, 1024) * 255)
    with torch.inference_mode():
        full, half = ours.image_encoder(x), bf16.image_encoder(x.bfloat16())
    assert half.dtype == torch.bfloat16
    err = (half.float() - full).abs().max() / full.abs().max()
    assert err < 0.03, f"bfloat16 embedding off by {err:.3g} of the largest magnitude"


@pytest.mark.parametrize("multimask", [True, False], ids=["multimask", "single"])
@pytest.mark.parametrize("case", list(CASES))
def test_predict_matches(predictors, case, multimask):
    rp, op = predictors
    check_predict(rp, op, dict(CASES[case], multimask_output=multimask), case)


def test_mask_input_from_previous_prediction(predictors):
    check_mask_input(*predictors, CASES["one positive point"])


@pytest.fixture(scope="module")
def encoding_once(checkpoint):
    """The models of ``models`` but each encoding the photo once for all everything tests."""
    ref, path = checkpoint
    ours = tijeras.sam_model_registry["vit_t"](checkpoint=str(path))
    ref = msam.sam_model_registry["vit_t"](checkpoint=str(path))
    encode_once(ref.image_encoder)
    encode_once(ours.image_encoder)
    return ref, ours


@pytest.mark.parametrize(
    "options",
    [
        dict(points_per_side=5, **KEEP_ALL),
        dict(points_per_side=5, **NMS_ONLY),
    ],
    ids=["keep-all", "nms"],
)
def test_everything_mode_matches(encoding_once, everything_photo, options):
    ref_model, our_model = encoding_once
    ref = msam.SamAutomaticMaskGenerator(ref_model, **options).generate(everything_photo)
    ours = SamAutomaticMaskGenerator(our_model, **options).generate(everything_photo)
    assert ref, "the options keep at least one mask"
    compare(ref, ours)


def test_mobile_sam_file_given_as_vit_b_names_its_family(checkpoint):
    _, path = checkpoint
    with pytest.raises(CheckpointError) as err:
        build_model("vit_b", checkpoint=path)
    message = str(err.value)
    assert message.startswith(
        f"{path} does not match model sam-vit-b: it looks like "
        "MobileSAM (mobile-sam, TinyViT encoder); "
    )
    assert "missing keys: image_encoder.pos_embed" in message
    assert "unexpected keys: image_encoder.patch_embed.seq.0.c.weight" in message


def test_vit_b_weights_given_as_mobile_sam_name_their_family():
    state_dict = build_model("sam-vit-b", device="meta").state_dict()
    model = build_model("mobile-sam", device="meta")
    with pytest.raises(CheckpointError) as err:
        load_state_dict_into(model, state_dict, "mobile-sam", "sam_vit_b.pth", REGISTRY)
    assert str(err.value).startswith(
        "sam_vit_b.pth does not match model mobile-sam: it looks like sam-vit-b (12 blocks); "
    )


def test_attention_bias_follows_loaded_weights():
    model = build_model("test-tiny-mobile")
    x = torch.randn(1, 3, 1024, 1024)
    with torch.inference_mode():
        before = model.image_encoder(x)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for key, value in state.items():
        if key.endswith("attention_biases"):
            state[key] = torch.randn(value.shape)
    model.load_state_dict(state)
    fresh = build_model("test-tiny-mobile")
    fresh.load_state_dict(state)
    with torch.inference_mode():
        after, expected = model.image_encoder(x), fresh.image_encoder(x)
    assert not torch.allclose(after, before)
    torch.testing.assert_close(after, expected, rtol=0, atol=0)
