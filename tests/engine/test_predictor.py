"""The native predictor on the tiny random-weight model: inputs, batching, cache, embeddings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import tijeras
from tijeras.errors import PromptError, TijerasError
from tijeras.models.blocks.fast_decode import image_region
from tijeras.types import PromptBatch


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return tijeras.build_model("test-tiny")


@pytest.fixture()
def predictor(model):
    return tijeras.Predictor(model, model_name="test-tiny")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = np.zeros((120, 200, 3), np.uint8)
    img[20:80, 40:120] = (200, 40, 40)
    return img + rng.integers(0, 20, img.shape, dtype=np.uint8)


POINT = {"point_coords": np.array([[60.0, 50.0]]), "point_labels": np.array([1])}


def test_predict_shapes_and_dtypes(predictor, photo):
    predictor.set_image(photo)
    pred = predictor.predict(**POINT)
    assert pred.masks.shape == (3, 120, 200) and pred.masks.dtype == np.bool_
    assert pred.scores.shape == (3,) and pred.scores.dtype == np.float32
    assert pred.low_res_logits.shape == (3, 256, 256)
    single = predictor.predict(**POINT, multimask_output=False)
    assert single.masks.shape == (1, 120, 200)
    logits = predictor.predict(**POINT, return_logits=True)
    assert logits.masks.dtype == np.float32
    np.testing.assert_array_equal(logits.masks > 0, pred.masks)
    mask, score = pred.best()
    assert score == pred.scores.max() and mask.shape == (120, 200)


def test_path_pil_and_array_give_the_same_embedding(tmp_path, predictor, photo):
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    a = predictor.set_image(photo).features.clone()
    predictor.cache.clear()
    b = predictor.set_image(path).features.clone()
    predictor.cache.clear()
    c = predictor.set_image(Image.fromarray(photo)).features.clone()
    assert torch.equal(a, b) and torch.equal(a, c)


def test_bgr_input_matches_rgb(predictor, photo):
    rgb = predictor.set_image(photo).features.clone()
    bgr = predictor.set_image(np.ascontiguousarray(photo[..., ::-1]), image_format="BGR")
    assert torch.equal(rgb, bgr.features)


def test_image_is_never_encoded_twice(model, photo, monkeypatch):
    calls = []
    original = model.image_encoder.forward
    monkeypatch.setattr(model.image_encoder, "forward", lambda x: calls.append(1) or original(x))
    pred = tijeras.Predictor(model, cache_size=2)
    pred.set_image(photo)
    pred.set_image(photo.copy())  # same content, different array
    assert len(calls) == 1
    pred.set_image(photo[::-1].copy())
    pred.set_image(photo[:, ::-1].copy())  # evicts the first (capacity 2)
    pred.set_image(photo)
    assert len(calls) == 4
    assert pred.cache.hits == 1


def test_batch_of_prompts_matches_one_by_one(predictor, photo):
    predictor.set_image(photo)
    boxes = np.array([[10, 10, 100, 90], [40, 20, 120, 80], [0, 0, 199, 119]], float)
    batch = predictor.predict(box=boxes, multimask_output=False)
    assert batch.masks.shape == (3, 1, 120, 200)
    for i, box in enumerate(boxes):
        one = predictor.predict(box=box, multimask_output=False)
        np.testing.assert_allclose(batch.low_res_logits[i], one.low_res_logits, atol=1e-5)
        np.testing.assert_allclose(batch.scores[i], one.scores, atol=1e-6)


def test_mask_input_round_trip(predictor, photo):
    predictor.set_image(photo)
    first = predictor.predict(**POINT)
    again = predictor.predict(
        **POINT,
        mask_input=first.low_res_logits[np.argmax(first.scores)][None],
        multimask_output=False,
    )
    assert again.masks.shape == (1, 120, 200)


@pytest.mark.parametrize("shape", [(120, 200), (200, 120), (128, 128)])
def test_image_only_decoding_gives_the_same_masks(model, predictor, shape):
    """Logits skipped outside the image change no upscaled mask pixel, and no score."""
    rng = np.random.default_rng(1)
    predictor.set_image(rng.integers(0, 255, (*shape, 3), dtype=np.uint8))
    emb = predictor.embedding
    coords = torch.tensor([[[10.0, 20.0]], [[60.0, 40.0]], [[5.0, 90.0]]])
    labels = torch.ones(3, 1, dtype=torch.int)
    whole = predictor.decode(PromptBatch(coords, labels), multimask=True)
    only = predictor.decode(PromptBatch(coords, labels), multimask=True, masks_only=True)
    full, iou_full = whole.low_res_logits, whole.iou_scores
    part, iou_part = only.low_res_logits, only.iou_scores
    assert torch.equal(iou_full, iou_part)
    up_full = model.postprocess_masks(full, emb.input_size, emb.original_size)
    up_part = model.postprocess_masks(part, emb.input_size, emb.original_size)
    assert torch.equal(up_full, up_part)
    grid = model.input_spec.embedding_grid
    rows, cols = image_region(
        emb.input_size, model.input_spec.image_size, model.input_spec.mask_input_size, grid
    )
    if shape[0] != shape[1]:  # a padded side: less was computed, and marked as such
        assert (rows, cols) != grid
        assert (part == torch.finfo(part.dtype).min).any()
    else:
        assert (rows, cols) == grid and torch.equal(full, part)


def test_save_and_load_embedding(tmp_path, model, predictor, photo):
    predictor.set_image(photo)
    expected = predictor.predict(**POINT)
    path = predictor.save_embedding(tmp_path / "emb.safetensors")
    fresh = tijeras.Predictor(model, model_name="test-tiny")
    emb = fresh.load_embedding(path)
    assert emb.original_size == (120, 200)
    got = fresh.predict(**POINT)
    np.testing.assert_array_equal(got.masks, expected.masks)
    other = tijeras.Predictor(model, model_name="sam-vit-b")
    with pytest.raises(ValueError, match="computed by model 'test-tiny'"):
        other.load_embedding(path)
    (tmp_path / "junk.safetensors").write_bytes(b"not an embedding")
    with pytest.raises(TijerasError, match="junk.safetensors"):
        fresh.load_embedding(tmp_path / "junk.safetensors")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"point_coords": [[500, 10]], "point_labels": [1]}, r"point \(500, 10\) is outside"),
        ({"point_coords": [[float("nan"), 10]], "point_labels": [1]}, "NaN"),
        ({"point_coords": [[5, 10]]}, "point_labels must be given"),
        ({"point_coords": [[5, 10]], "point_labels": [1, 0]}, "does not match"),
        ({"point_coords": np.zeros((0, 2)), "point_labels": np.zeros(0)}, "empty"),
        ({"point_coords": [[5, 10]], "point_labels": [7]}, "label 7"),
        ({"box": [50, 10, 20, 60]}, "x1 < x0"),
        ({"box": [0, 0, 10]}, "box must be 4 numbers"),
        ({"box": [0, 0, 500, 60]}, "outside the 200x120 image"),
        ({"mask_input": np.zeros((1, 64, 64))}, "mask_input must be 1 x 256 x 256"),
        ({}, "no prompt given"),
        (
            {
                "box": [[0, 0, 10, 10]],
                "point_coords": [[[1, 1]], [[2, 2]]],
                "point_labels": [[1], [1]],
            },
            "batch sizes differ",
        ),
    ],
)
def test_bad_prompts_are_named(predictor, photo, kwargs, message):
    predictor.set_image(photo)
    with pytest.raises(PromptError, match=message):
        predictor.predict(**kwargs)


def test_predict_before_set_image(model):
    with pytest.raises(RuntimeError, match="set_image"):
        tijeras.Predictor(model).predict(**POINT)


def test_bfloat16_model_predicts(photo):
    torch.manual_seed(0)
    m32 = tijeras.build_model("test-tiny")
    m16 = tijeras.build_model("test-tiny", dtype=torch.bfloat16)
    m16.load_state_dict({k: v.to(torch.bfloat16) for k, v in m32.state_dict().items()})
    p32, p16 = tijeras.Predictor(m32), tijeras.Predictor(m16)
    p32.set_image(photo)
    p16.set_image(photo)
    a, b = p32.predict(**POINT), p16.predict(**POINT)
    assert b.masks.shape == a.masks.shape and b.scores.dtype == np.float32
    assert (
        np.abs(a.low_res_logits - b.low_res_logits).mean()
        < 0.05 * np.abs(a.low_res_logits).mean() + 1e-3
    )


def test_bfloat16_encoder_with_float32_decoder(photo):
    torch.manual_seed(0)
    m32 = tijeras.build_model("test-tiny")
    mixed = tijeras.build_model("test-tiny", dtype=torch.bfloat16, decoder_dtype=torch.float32)
    mixed.load_state_dict(m32.state_dict())
    assert mixed.image_encoder.patch_embed.proj.weight.dtype == torch.bfloat16
    assert mixed.mask_decoder.iou_token.weight.dtype == torch.float32
    p32, pmix = tijeras.Predictor(m32), tijeras.Predictor(mixed)
    p32.set_image(photo)
    emb = pmix.set_image(photo)
    assert emb.features.dtype == torch.bfloat16
    a, b = p32.predict(**POINT), pmix.predict(**POINT)
    assert b.masks.shape == a.masks.shape
    assert (
        np.abs(a.low_res_logits - b.low_res_logits).mean()
        < 0.05 * np.abs(a.low_res_logits).mean() + 1e-3
    )


def test_no_hashing_when_the_cache_is_off(model, monkeypatch, photo):
    """Everything mode sets every crop on a cache-less predictor: the pixels are not hashed."""
    import tijeras.engine.predictor as engine

    calls = []
    monkeypatch.setattr(engine, "image_key", lambda *a, **k: calls.append(1) or "key")
    tijeras.Predictor(model, cache_size=0).set_image(photo)
    assert calls == []
    tijeras.Predictor(model, cache_size=2).set_image(photo)
    assert calls == [1]
