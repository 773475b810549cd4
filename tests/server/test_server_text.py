"""``tijeras.server.text.segment_text``: a phrase's instances as the HTTP API returns masks
(compressed RLE, XYWH bbox, score, id), stored on the image so the mask endpoints take them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.data import data_path
from helpers.sam3 import confident_tiny_sam3

import tijeras
from tijeras.errors import PromptError
from tijeras.io import decode_coco_rle, load_image
from tijeras.server.store import ImageEntry
from tijeras.server.text import segment_text


@pytest.fixture(scope="module")
def entry() -> ImageEntry:
    pixels = load_image(data_path("sam_demo_images", "images", "groceries.jpg"))
    entry = ImageEntry(id="img", pixels=pixels, name="groceries.jpg", status="ready")
    entry.predictor = tijeras.Predictor(confident_tiny_sam3(), cache_size=0)
    entry.predictor.set_image(pixels)
    return entry


def test_instances_are_answered_and_stored(entry) -> None:
    answer = segment_text(entry, "red apple", 0.5)
    expected = entry.predictor.segment_text("red apple", threshold=0.5)
    assert answer["text"] == "red apple" and answer["count"] == len(expected) >= 2
    assert answer["presence"] == pytest.approx(expected.presence, abs=1e-5)
    for item, mask, box, score in zip(
        answer["instances"], expected.masks, expected.boxes, expected.scores
    ):
        assert item["source"] == "text" and item["score"] == pytest.approx(score, abs=1e-5)
        assert np.array_equal(decode_coco_rle(item["rle"]), mask)
        assert item["area"] == int(mask.sum())
        assert item["box"] == pytest.approx(box.tolist(), abs=0.01)
        stored = entry.mask(item["id"])
        assert stored is not None and stored.rle == item["rle"]
        ys, xs = np.nonzero(mask)
        x0, y0 = xs.min(), ys.min()
        assert item["bbox"] == [x0, y0, xs.max() + 1 - x0, ys.max() + 1 - y0]


def test_nothing_found_and_mistakes(entry) -> None:
    none = segment_text(entry, "a purple elephant", 1.0)
    assert none["count"] == 0 and none["instances"] == []
    with pytest.raises(PromptError, match="context length is 32"):
        segment_text(entry, "", 0.5)
    with pytest.raises(PromptError, match="threshold"):
        segment_text(entry, "cat", -0.1)
    waiting = ImageEntry(id="new", pixels=entry.pixels, name="x.jpg")
    with pytest.raises(PromptError, match="not encoded yet"):
        segment_text(waiting, "cat", 0.5)
    torch.manual_seed(0)
    sam = ImageEntry(id="sam", pixels=entry.pixels[:64, :64], name="y.jpg")
    sam.predictor = tijeras.Predictor(tijeras.build_model("test-tiny"), cache_size=0)
    sam.predictor.set_image(sam.pixels)
    with pytest.raises(PromptError, match="does not take text prompts"):
        segment_text(sam, "cat", 0.5)


# ------------------------------------------------------------------ POST /api/images/{id}/text
@pytest.fixture(scope="module")
def text_api():
    from fastapi.testclient import TestClient
    from helpers.server import upload

    from tijeras.server.app import create_app
    from tijeras.server.backend import Backend
    from tijeras.server.settings import ServerSettings

    backend = Backend(confident_tiny_sam3(), "sam3-test-tiny", "tiny random SAM 3")
    with TestClient(create_app(ServerSettings(), backend=backend)) as c:
        data = data_path("sam_demo_images", "images", "groceries.jpg").read_bytes()
        yield c, upload(c, data, "groceries.jpg")["id"]


def test_the_route_answers_instances_keepable_by_the_phrase(text_api) -> None:
    c, image_id = text_api
    assert c.get("/api/info").json()["text"] is True
    answer = c.post(f"/api/images/{image_id}/text", json={"text": " red  apple ", "threshold": 0})
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert found["text"] == "red apple" and found["threshold"] == 0.0
    assert found["count"] == len(found["instances"]) == 16  # every query of the tiny model
    scores = [i["score"] for i in found["instances"]]
    assert scores == sorted(scores, reverse=True)
    first = found["instances"][0]
    assert first["source"] == "text" and len(first["box"]) == 4
    mask = c.get(f"/api/images/{image_id}/masks/{first['id']}").json()
    assert mask["rle"] == first["rle"]
    kept = c.post(
        f"/api/images/{image_id}/objects", json={"mask_id": first["id"], "name": "red apple"}
    )
    assert kept.status_code == 201
    coco = c.get(f"/api/images/{image_id}/coco.json").json()
    assert [cat["name"] for cat in coco["categories"]] == ["red apple"]
    none = c.post(f"/api/images/{image_id}/text", json={"text": "red apple", "threshold": 1})
    assert none.status_code == 200 and none.json()["count"] == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"text": "   "}, "text: the phrase is empty"),
        ({"text": "apple " * 40}, "the tokenizer's context length is 32"),
        ({"text": "apple", "threshold": 1.5}, "threshold: Input should be less than or equal to 1"),
        ({"text": "apple", "threshold": -0.1}, "threshold: Input should be greater than or equal"),
        ({"threshold": 0.5}, "text: Field required"),
    ],
)
def test_the_route_names_each_mistake(text_api, body: dict, message: str) -> None:
    c, image_id = text_api
    answer = c.post(f"/api/images/{image_id}/text", json=body)
    assert answer.status_code == 422 and message in answer.json()["detail"], answer.text


def test_a_model_without_text_prompts_is_named() -> None:
    from helpers.server import client, upload

    with client() as c:
        assert c.get("/api/info").json()["text"] is False
        photo = data_path("sam_demo_images", "images", "groceries.jpg").read_bytes()
        image_id = upload(c, photo)["id"]
        answer = c.post(f"/api/images/{image_id}/text", json={"text": "apple"})
        assert answer.status_code == 422
        assert "model test-tiny does not take text prompts" in answer.json()["detail"]
        missing = c.post("/api/images/nope/text", json={"text": "apple"})
        assert missing.status_code == 404 and "no image with id 'nope'" in missing.json()["detail"]
