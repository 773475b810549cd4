"""The HTTP API of the web app: every endpoint, every user error, and isolation between images."""

from __future__ import annotations

import io
import json
import struct
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from helpers.server import client, tiny_backend, upload, wait_everything, wait_ready
from PIL import Image
from pycocotools.coco import COCO

from tijeras import Predictor, SamAutomaticMaskGenerator
from tijeras.io.rle import decode_coco_rle

POINT = [[500.0, 375.0]]


@pytest.fixture(scope="module")
def truck_bytes(truck_path: Path) -> bytes:
    return truck_path.read_bytes()


@pytest.fixture(scope="module")
def api(truck_bytes: bytes):
    with client() as c:
        status = upload(c, truck_bytes, "truck.jpg")
        yield c, status["id"]


def _png_header_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def _jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (120, 30, 200)).save(out, format="JPEG")
    return out.getvalue()


def _noisy_jpeg() -> bytes:
    pixels = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG")
    return out.getvalue()


# ------------------------------------------------------------------------------ upload
def test_info_names_the_model_and_limits(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(_jpeg(8, 8))
    (tmp_path / "notes.txt").write_text("not an image")
    with client(samples=str(tmp_path), max_upload_mb=2) as c:
        info = c.get("/api/info").json()
        assert info["model"] == "test-tiny" and info["fallback"] is False
        assert info["max_upload_bytes"] == 2 * 1024 * 1024
        assert info["samples"] == ["a.jpg"]
        assert c.get("/api/samples/a.jpg").content == (tmp_path / "a.jpg").read_bytes()
        missing = c.get("/api/samples/notes.txt")
        assert missing.status_code == 404 and "notes.txt" in missing.json()["detail"]
        assert c.get("/api/samples/..%2Fsecret").status_code == 404


def test_upload_answers_id_size_and_progress(api, truck_bytes: bytes) -> None:
    c, image_id = api
    status = c.get(f"/api/images/{image_id}").json()
    assert (status["width"], status["height"]) == (1800, 1200)
    assert status["status"] == "ready" and status["progress"] == 1.0
    assert status["name"] == "truck.jpg"
    second = c.post("/api/images", content=truck_bytes).json()["id"]
    assert second != image_id and len(second) >= 22  # 128 random bits, URL-safe
    wait_ready(c, second)
    assert c.delete(f"/api/images/{second}").status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"", 400, "empty"),
        (b"plain text, not a picture", 415, "not a supported image"),
        (_noisy_jpeg()[:5000], 415, "cannot be decoded"),
        (_png_header_claiming(200_000, 200_000), 413, "too many pixels"),
        (_png_header_claiming(3000, 3000), 413, "the limit is 1000000"),
    ],
)
def test_upload_errors(body: bytes, status: int, words: str) -> None:
    with client(max_pixels=1_000_000) as c:
        response = c.post("/api/images", content=body, headers={"X-Filename": "bad.png"})
        assert response.status_code == status, response.text
        assert words in response.json()["detail"]
        assert len(c.app.state.store) == 0


def test_upload_size_limit() -> None:
    with client(max_upload_mb=0.001) as c:
        response = c.post("/api/images", content=b"x" * 5000)
        assert response.status_code == 413
        assert response.json()["detail"] == "the upload is 5000 bytes; the limit is 1048"
        assert len(c.app.state.store) == 0


# ------------------------------------------------------------------------------ prompts
def test_segment_matches_the_predictor(api, truck_image: np.ndarray) -> None:
    c, image_id = api
    answer = c.post(f"/api/images/{image_id}/segment", json={"points": POINT, "labels": [1]})
    assert answer.status_code == 200
    masks = answer.json()["masks"]
    predictor = Predictor(tiny_backend().model)
    predictor.set_image(truck_image)
    expected = predictor.predict(np.array(POINT), np.array([1]), multimask_output=True)
    order = np.argsort(-expected.scores)
    assert [m["score"] for m in masks] == pytest.approx(expected.scores[order], abs=1e-4)
    for mask, index in zip(masks, order):
        decoded = decode_coco_rle(mask["rle"]).astype(bool)
        assert np.array_equal(decoded, expected.masks[index])
        assert mask["area"] == int(expected.masks[index].sum())


def test_box_and_previous_mask_refine(api) -> None:
    c, image_id = api
    url = f"/api/images/{image_id}/segment"
    first = c.post(url, json={"points": POINT, "labels": [1]}).json()["masks"][0]
    body = {"box": [100, 100, 900, 800], "mask_input": first["id"], "multimask": False}
    refined = c.post(url, json=body)
    assert refined.status_code == 200 and len(refined.json()["masks"]) == 1
    both = {"points": [[500, 375], [1500, 300]], "labels": [1, 0], "box": [100, 100, 900, 800]}
    assert len(c.post(url, json=both).json()["masks"]) == 3


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"points": [[2000, 10]], "labels": [1]}, "point (2000, 10) is outside the 1800x1200"),
        ({"points": [[10, -5]], "labels": [1]}, "outside"),
        ({"points": [], "labels": []}, "points is empty"),
        ({"points": [[1, 2, 3]], "labels": [1]}, "each point must be [x, y]"),
        ({"points": [[1, 2]], "labels": [1, 0]}, "1 points but 2 labels"),
        ({"points": [[1, 2]], "labels": [2]}, "labels must be 1 (foreground) or 0"),
        ({"points": [[1, 2]]}, "points and labels must be given together"),
        ({}, "no prompt given"),
        ({"box": [10, 10, 20]}, "box must be [x0, y0, x1, y1]"),
        ({"box": [10, 10, 5000, 20]}, "box"),
        ({"mask_input": "nope"}, "unknown mask id 'nope'"),
    ],
)
def test_bad_prompts_are_422_with_the_reason(api, body: dict, words: str) -> None:
    c, image_id = api
    response = c.post(f"/api/images/{image_id}/segment", json=body)
    assert response.status_code == 422, response.text
    assert words in response.json()["detail"]


def test_nan_coordinates_are_rejected(api) -> None:
    c, image_id = api
    text = '{"points": [[NaN, 10]], "labels": [1]}'
    response = c.post(
        f"/api/images/{image_id}/segment",
        content=text,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert "finite" in response.json()["detail"]


def test_unknown_ids_are_404(api) -> None:
    c, image_id = api
    for method, path in [
        ("get", "/api/images/unknown"),
        ("delete", "/api/images/unknown"),
        ("get", "/api/images/unknown/everything"),
        ("get", f"/api/images/{image_id}/masks/unknown/cutout.png"),
        ("get", f"/api/images/{image_id}/masks/unknown/mask.png"),
        ("delete", f"/api/images/{image_id}/objects/unknown"),
    ]:
        response = getattr(c, method)(path)
        assert response.status_code == 404, path
        assert "unknown" in response.json()["detail"]
    response = c.post("/api/images/unknown/segment", json={"points": POINT, "labels": [1]})
    assert response.status_code == 404


# ------------------------------------------------------------------------------ exports
def _best(c, image_id: str) -> dict:
    url = f"/api/images/{image_id}/segment"
    return c.post(url, json={"points": POINT, "labels": [1]}).json()["masks"][0]


def test_cutout_mask_and_inpaint_pngs(api, truck_image: np.ndarray) -> None:
    c, image_id = api
    best = _best(c, image_id)
    mask = decode_coco_rle(best["rle"]).astype(bool)
    base = f"/api/images/{image_id}/masks/{best['id']}"
    assert c.get(base).json()["rle"] == best["rle"]
    png = Image.open(io.BytesIO(c.get(f"{base}/mask.png").content))
    assert png.size == (1800, 1200) and np.array_equal(np.array(png) > 0, mask)
    cut = c.get(f"{base}/cutout.png")
    assert cut.headers["content-type"] == "image/png"
    rgba = np.array(Image.open(io.BytesIO(cut.content)))
    x, y, w, h = (int(v) for v in best["bbox"])
    assert rgba.shape == (h, w, 4)
    assert np.array_equal(rgba[..., 3] > 0, mask[y : y + h, x : x + w])
    assert np.array_equal(
        rgba[..., :3][rgba[..., 3] > 0],
        truck_image[y : y + h, x : x + w][mask[y : y + h, x : x + w]],
    )
    grown = np.array(Image.open(io.BytesIO(c.get(f"{base}/inpaint.png?dilate=5").content))) > 0
    assert grown[mask].all() and grown.sum() > mask.sum()
    bad = c.get(f"{base}/inpaint.png?dilate=-1")
    assert bad.status_code == 422 and "dilate" in bad.json()["detail"]


def test_objects_and_coco_export(api, tmp_path: Path) -> None:
    c, image_id = api
    base = f"/api/images/{image_id}/objects"
    first, second = _best(c, image_id), _best(c, image_id)
    kept = c.post(base, json={"mask_id": first["id"], "name": "truck"}).json()
    other = c.post(base, json={"mask_id": second["id"], "name": "wheel"}).json()
    renamed = c.patch(f"{base}/{other['id']}", json={"name": "tyre"}).json()
    assert renamed["name"] == "tyre"
    listed = c.get(base).json()["objects"]
    assert [o["name"] for o in listed][-2:] == ["truck", "tyre"]
    path = tmp_path / "objects.json"
    path.write_text(c.get(f"/api/images/{image_id}/coco.json").text)
    coco = COCO(str(path))
    names = {cat["name"] for cat in coco.loadCats(coco.getCatIds())}
    assert {"truck", "tyre"} <= names
    truck_id = coco.getCatIds(catNms=["truck"])[0]
    annotation = coco.loadAnns(coco.getAnnIds(catIds=[truck_id]))[-1]
    assert np.array_equal(coco.annToMask(annotation) > 0, decode_coco_rle(first["rle"]) > 0)
    assert c.delete(f"{base}/{kept['id']}").status_code == 200
    assert kept["id"] not in [o["id"] for o in c.get(base).json()["objects"]]
    missing = c.post(base, json={"mask_id": "nope", "name": "x"})
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]
    empty_name = c.post(base, json={"mask_id": first["id"], "name": ""})
    assert empty_name.status_code == 422 and "name" in empty_name.json()["detail"]


def test_everything_matches_the_generator(api, truck_image: np.ndarray) -> None:
    c, image_id = api
    options = {"points_per_side": 4, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}
    assert c.post(f"/api/images/{image_id}/everything", json=options).status_code == 202
    state = wait_everything(c, image_id)
    assert state["status"] == "done" and state["progress"] == 1.0
    expected = SamAutomaticMaskGenerator(tiny_backend().model, **options).generate(truck_image)
    assert len(state["masks"]) == len(expected) > 0
    got = sorted(m["area"] for m in state["masks"])
    assert got == sorted(int(r["area"]) for r in expected)
    some = state["masks"][0]
    assert c.get(f"/api/images/{image_id}/masks/{some['id']}/mask.png").status_code == 200
    bad = c.post(f"/api/images/{image_id}/everything", json={"points_per_side": 0})
    assert bad.status_code == 422 and "points_per_side" in bad.json()["detail"]


def test_everything_with_more_than_255_masks() -> None:
    """pycocotools' area() of a list overflows above 255 RLEs; the server must still answer
    every mask (and keep serving)."""
    keep_all = {
        "points_per_side": 12,
        "pred_iou_thresh": 0.0,
        "stability_score_thresh": 0.0,
        "box_nms_thresh": 1.0,
    }
    with client() as c:
        image_id = upload(c, _jpeg(160, 120))["id"]
        assert c.post(f"/api/images/{image_id}/everything", json=keep_all).status_code == 202
        state = wait_everything(c, image_id)
        assert state["status"] == "done", state.get("error")
        assert len(state["masks"]) >= 300
        assert all(m["area"] > 0 for m in state["masks"])
        assert c.get(f"/api/images/{image_id}").json()["status"] == "ready"


def test_everything_takes_the_model_familys_defaults(monkeypatch) -> None:
    """Options left out of the request are the family's: SAM 2's ``pred_iou_thresh`` is 0.8
    (SAM's 0.88 was used before); the request schema has no defaults of its own."""
    import torch

    from tijeras import build_model
    from tijeras.automatic.options import SAM2_EVERYTHING
    from tijeras.models.sam2.model import Sam2Model
    from tijeras.server.app import create_app
    from tijeras.server.backend import Backend
    from tijeras.server.schemas import EverythingRequest
    from tijeras.server.settings import ServerSettings

    assert all(v is None for v in EverythingRequest().model_dump().values())
    seen = []
    original = Sam2Model.mask_generator

    def spy(self, options, output_mode="binary_mask"):
        seen.append(options)
        return original(self, options.replace(points_per_side=1), output_mode)

    monkeypatch.setattr(Sam2Model, "mask_generator", spy)
    torch.manual_seed(0)
    backend = Backend(build_model("sam2.1-hiera-tiny"), "sam2.1-hiera-tiny", "random SAM 2.1")
    with TestClient(create_app(ServerSettings(), backend=backend)) as c:
        image_id = upload(c, _jpeg(64, 48))["id"]
        answer = c.post(f"/api/images/{image_id}/everything", json={"box_nms_thresh": 0.5})
        assert answer.status_code == 202
        assert wait_everything(c, image_id)["status"] == "done"
    assert seen == [SAM2_EVERYTHING.replace(box_nms_thresh=0.5)]


# ----------------------------------------------------------------- lifetime and isolation
def test_delete_leaves_other_images_intact(truck_bytes: bytes) -> None:
    with client() as c:
        a = upload(c, truck_bytes)["id"]
        b = upload(c, _jpeg(320, 240))["id"]
        assert c.delete(f"/api/images/{a}").json() == {"deleted": a}
        assert c.get(f"/api/images/{a}").status_code == 404
        assert c.post(f"/api/images/{a}/segment", json={"box": [1, 1, 9, 9]}).status_code == 404
        ok = c.post(f"/api/images/{b}/segment", json={"box": [10, 10, 100, 100]})
        assert ok.status_code == 200


def test_lru_and_timeout_eviction() -> None:
    with client(max_images=2) as c:
        ids = [upload(c, _jpeg(64 + i, 48))["id"] for i in range(3)]
        assert c.get(f"/api/images/{ids[0]}").status_code == 404
        assert all(c.get(f"/api/images/{i}").status_code == 200 for i in ids[1:])
    with client(ttl_seconds=3600) as c:
        image_id = upload(c, _jpeg(64, 48))["id"]
        store = c.app.state.store
        store.get(image_id).touched -= 3599  # idle for almost the time-out: still there
        assert c.get(f"/api/images/{image_id}").status_code == 200
        store.get(image_id).touched -= 3601  # idle for longer than the time-out: forgotten
        assert c.get(f"/api/images/{image_id}").status_code == 404


def test_decoding_continues_while_the_encoder_is_busy(api, truck_bytes: bytes) -> None:
    c, image_id = api
    gate = threading.Event()
    c.app.state.queue.submit("blocker", lambda: gate.wait(30))
    try:
        queued = c.post("/api/images", content=truck_bytes).json()
        assert queued["status"] == "queued" and queued["queue_position"] == 0
        waiting = c.post(f"/api/images/{queued['id']}/segment", json={"box": [1, 1, 50, 50]})
        assert waiting.status_code == 409 and "not encoded yet" in waiting.json()["detail"]
        started = time.perf_counter()
        answer = c.post(f"/api/images/{image_id}/segment", json={"points": POINT, "labels": [1]})
        assert answer.status_code == 200 and time.perf_counter() - started < 10
    finally:
        gate.set()
    assert wait_ready(c, queued["id"])["status"] == "ready"


# -------------------------------------------------------------------------------- hover
def test_hover_answers_the_best_candidate_at_hover_size(api, truck_image: np.ndarray) -> None:
    c, image_id = api
    with c.websocket_connect(f"/api/images/{image_id}/hover") as ws:
        ws.send_text(json.dumps({"seq": 1, "x": 500, "y": 375}))
        answer = ws.receive_json()
    assert answer["seq"] == 1 and answer["rle"]["size"] == [683, 1024]
    predictor = Predictor(tiny_backend().model)
    predictor.set_image(truck_image)
    expected = predictor.predict(np.array(POINT), np.array([1]), multimask_output=True)
    assert answer["score"] == pytest.approx(float(expected.scores.max()), abs=1e-5)
    small = np.array(Image.fromarray(expected.best()[0]).resize((1024, 683), Image.NEAREST))
    agreement = (decode_coco_rle(answer["rle"]).astype(bool) == small).mean()
    assert agreement > 0.98


def test_hover_errors_keep_the_socket_open(api) -> None:
    c, image_id = api
    with c.websocket_connect(f"/api/images/{image_id}/hover") as ws:
        ws.send_text(json.dumps({"seq": 1, "x": -3, "y": 10}))
        assert "outside" in ws.receive_json()["error"]
        ws.send_text("not json")
        assert "expected" in ws.receive_json()["error"]
        ws.send_text(json.dumps({"seq": 2, "x": 10, "y": 10}))
        assert ws.receive_json()["seq"] == 2
    with c.websocket_connect("/api/images/unknown/hover") as ws:
        assert "no image with id 'unknown'" in ws.receive_json()["error"]


def test_hover_drops_stale_positions(api, monkeypatch: pytest.MonkeyPatch) -> None:
    from tijeras.server import service

    c, image_id = api
    real = service.hover

    def slow(*args, **kwargs):
        time.sleep(0.05)
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "hover", slow)
    with c.websocket_connect(f"/api/images/{image_id}/hover") as ws:
        for seq in range(1, 21):
            ws.send_text(json.dumps({"seq": seq, "x": 20 + seq, "y": 30}))
        answered = []
        while not answered or answered[-1] != 20:
            answered.append(ws.receive_json()["seq"])
    assert answered == sorted(answered) and answered[-1] == 20
    assert len(answered) < 20  # positions that went stale while decoding were skipped


def test_openapi_documents_the_endpoints(api) -> None:
    c, _ = api
    paths = c.get("/openapi.json").json()["paths"]
    for path in [
        "/api/images",
        "/api/images/{image_id}",
        "/api/images/{image_id}/segment",
        "/api/images/{image_id}/everything",
        "/api/images/{image_id}/masks/{mask_id}/cutout.png",
        "/api/images/{image_id}/coco.json",
    ]:
        assert path in paths
    assert c.get("/docs").status_code == 200
    page = c.get("/")
    assert page.status_code == 200 and "tijeras" in page.text
    assert c.get("/static/app.js").status_code == 200


def test_info_says_what_precision_the_model_runs_in_and_why() -> None:
    import torch
    from fastapi.testclient import TestClient

    from tijeras import load_model
    from tijeras.hub.precision import choose_precision
    from tijeras.server.app import create_app
    from tijeras.server.backend import Backend
    from tijeras.server.settings import ServerSettings

    with client() as c:  # test-tiny in float32, as ServerSettings defaults
        assert c.get("/api/info").json()["precision"] == {
            "label": "float32",
            "reason": "--dtype float32",
        }
    mixed = load_model("test-tiny", dtype="auto")
    backend = Backend(mixed, "test-tiny", "tiny random SAM for tests")
    with TestClient(create_app(ServerSettings(dtype="auto"), backend=backend)) as c:
        precision = c.get("/api/info").json()["precision"]
    chosen = choose_precision("cpu")
    expected = (
        "float32" if chosen.encoder == torch.float32 else "bfloat16 encoder + float32 decoder"
    )
    assert precision == {"label": expected, "reason": f"--dtype auto: {chosen.reason}"}
    classic = Backend(load_model("classic"), "classic", "classical backend")
    with TestClient(create_app(ServerSettings(), backend=classic)) as c:
        assert c.get("/api/info").json()["precision"] is None
