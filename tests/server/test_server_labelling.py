"""The HTTP API of the labelling features: download names, the erased photo, stickers, brushed
masks, polygon COCO, restorable objects, images with kept objects never evicted, the cost cap of
everything mode, the classical backend's candidates, and ``--folder``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from helpers.server import client, upload, wait_everything
from PIL import Image
from pycocotools.coco import COCO

from tijeras.io.rle import decode_coco_rle
from tijeras.server.app import create_app
from tijeras.server.backend import Backend
from tijeras.server.settings import ServerSettings


def _png(width: int, height: int, colour=(40, 90, 160)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG")
    return out.getvalue()


def _scene() -> bytes:
    """A 160 x 120 photo-like scene: a bright square on a gradient."""
    y, x = np.mgrid[0:120, 0:160]
    rgb = np.stack([x, y * 2, (x + y) // 2], axis=-1).astype(np.uint8)
    rgb[30:90, 50:110] = (250, 230, 40)
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def api():
    with client() as c:
        status = upload(c, _scene(), "002.png")
        yield c, status["id"]


def _best(c: TestClient, image_id: str, box: tuple = (48, 28, 112, 92)) -> dict:
    url = f"/api/images/{image_id}/segment"
    answer = c.post(url, json={"box": list(box), "multimask": False})
    assert answer.status_code == 200, answer.text
    return answer.json()["masks"][0]


def _square_mask(c: TestClient, image_id: str) -> dict:
    """A mask of exactly the bright square, made with the brush from an empty canvas."""
    best = _best(c, image_id)
    url = f"/api/images/{image_id}/masks/{best['id']}/edit"
    wipe = {"mode": "erase", "radius": 200, "points": [[80, 60]]}
    blank = c.post(url, json={"strokes": [wipe]}).json()
    assert blank["area"] == 0
    rows = [{"mode": "add", "radius": 0.5, "points": [[50, y], [109, y]]} for y in range(30, 90)]
    square = c.post(f"/api/images/{image_id}/masks/{blank['id']}/edit", json={"strokes": rows})
    assert square.status_code == 201, square.text
    return square.json()


# ---------------------------------------------------------------------- download names
def test_downloads_are_named_after_the_image_and_the_object(api) -> None:
    c, image_id = api
    mask = _best(c, image_id)
    base = f"/api/images/{image_id}/masks/{mask['id']}"
    assert (
        c.get(f"{base}/cutout.png")
        .headers["content-disposition"]
        .startswith('attachment; filename="002-object-cutout.png"')
    )
    kept = c.post(
        f"/api/images/{image_id}/objects", json={"mask_id": mask["id"], "name": "penguin"}
    )
    assert kept.status_code == 201
    names = {
        "cutout.png": "002-penguin-cutout.png",
        "mask.png": "002-penguin-mask.png",
        "inpaint.png?dilate=3": "002-penguin-inpaint-mask.png",
        "erase.jpg": "002-penguin-erased.jpg",
        "erase.png": "002-penguin-erased.png",
        "sticker.webp": "002-penguin-sticker.webp",
    }
    for path, name in names.items():
        response = c.get(f"{base}/{path}")
        assert response.status_code == 200, (path, response.text)
        assert f'filename="{name}"' in response.headers["content-disposition"]
    unicode = c.get(f"{base}/cutout.png", params={"name": "pingüino/../x"})
    header = unicode.headers["content-disposition"]
    assert "filename*=UTF-8''002-ping%C3%BCino-x-cutout.png" in header
    coco = c.get(f"/api/images/{image_id}/coco.json").headers["content-disposition"]
    assert 'filename="002-coco.json"' in coco


def test_the_upload_name_may_be_any_unicode(api) -> None:
    c, _ = api
    answer = c.post("/api/images", content=_png(8, 8), headers={"X-Filename": "%C3%A1rbol.png"})
    assert answer.status_code == 201 and answer.json()["name"] == "árbol.png"
    c.delete(f"/api/images/{answer.json()['id']}")


# ------------------------------------------------------------------ erase and sticker
def test_the_erased_photo_changes_only_the_grown_mask(api) -> None:
    c, image_id = api
    square = _square_mask(c, image_id)
    base = f"/api/images/{image_id}/masks/{square['id']}"
    original = np.array(Image.open(io.BytesIO(_scene())).convert("RGB")).astype(int)
    erased = np.array(Image.open(io.BytesIO(c.get(f"{base}/erase.png?dilate=4").content)))
    grown = np.zeros((120, 160), bool)
    grown[26:94, 46:114] = True
    assert np.array_equal(erased[~grown], original[~grown])  # outside: the photo, exactly
    yellow = np.array([250, 230, 40])
    assert np.abs(erased[35:85, 55:105] - yellow).sum(-1).mean() > 100  # the square is gone
    jpeg = c.get(f"{base}/erase.jpg")
    assert jpeg.headers["content-type"] == "image/jpeg"
    for bad in ("dilate=-1", "dilate=101"):
        answer = c.get(f"{base}/erase.jpg?{bad}")
        assert answer.status_code == 422 and "dilate" in answer.json()["detail"]
    assert c.get(f"{base}/erase.gif").status_code == 422


def test_the_sticker_is_512_square_webp_with_the_object_centred(api) -> None:
    c, image_id = api
    square = _square_mask(c, image_id)
    base = f"/api/images/{image_id}/masks/{square['id']}"
    plain = Image.open(io.BytesIO(c.get(f"{base}/sticker.webp").content))
    assert plain.format == "WEBP" and plain.size == (512, 512) and plain.mode == "RGBA"
    alpha = np.array(plain)[..., 3]
    ys, xs = np.nonzero(alpha > 128)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == pytest.approx((16, 495, 16, 495), abs=2)
    outlined = np.array(Image.open(io.BytesIO(c.get(f"{base}/sticker.webp?outline=8").content)))
    ring = outlined[8:14, 100:400]  # above the object, inside the margin: white and opaque
    assert (ring[..., 3] > 200).all() and (ring[..., :3] > 230).all()
    bad = c.get(f"{base}/sticker.webp?outline=10&margin=4")
    assert bad.status_code == 422 and "outline 10 must fit in the margin" in bad.json()["detail"]


def test_an_empty_mask_makes_no_file(api) -> None:
    c, image_id = api
    mask = _best(c, image_id)
    wipe = {"strokes": [{"mode": "erase", "radius": 500, "points": [[80, 60]]}]}
    empty = c.post(f"/api/images/{image_id}/masks/{mask['id']}/edit", json=wipe).json()
    for path in ("cutout.png", "sticker.webp", "erase.jpg"):
        answer = c.get(f"/api/images/{image_id}/masks/{empty['id']}/{path}")
        assert answer.status_code == 422 and "the mask is empty" in answer.json()["detail"]


# --------------------------------------------------------------------------- brushing
def test_brush_strokes_make_a_new_mask(api) -> None:
    c, image_id = api
    square = _square_mask(c, image_id)
    assert square["source"] == "edited" and square["area"] == 60 * 60
    assert square["bbox"] == [50.0, 30.0, 60.0, 60.0]
    url = f"/api/images/{image_id}/masks/{square['id']}/edit"
    hole = c.post(url, json={"strokes": [{"mode": "erase", "radius": 5, "points": [[80, 60]]}]})
    carved = decode_coco_rle(hole.json()["rle"]).astype(bool)
    assert not carved[60, 80] and carved[31, 51] and hole.json()["area"] < 3600
    still = c.get(f"/api/images/{image_id}/masks/{square['id']}").json()
    assert still["area"] == 3600  # the original stays for undo


@pytest.mark.parametrize(
    ("strokes", "words"),
    [
        ([], "strokes"),
        ([{"mode": "paint", "radius": 3, "points": [[1, 1]]}], "mode"),
        ([{"mode": "add", "radius": 0, "points": [[1, 1]]}], "radius"),
        ([{"mode": "add", "radius": 3, "points": []}], "points"),
        ([{"mode": "add", "radius": 3, "points": [[1, 2, 3]]}], "each stroke point must be [x, y]"),
        ([{"mode": "add", "radius": 3, "points": [[1e9, 2]]}], "far outside"),
    ],
)
def test_bad_strokes_are_422_naming_the_problem(api, strokes, words) -> None:
    c, image_id = api
    mask = _best(c, image_id)
    answer = c.post(f"/api/images/{image_id}/masks/{mask['id']}/edit", json={"strokes": strokes})
    assert answer.status_code == 422 and words in answer.json()["detail"]


# ------------------------------------------------------------------ objects and COCO
def test_coco_with_polygons(api, tmp_path: Path) -> None:
    c, image_id = api
    square = _square_mask(c, image_id)
    c.post(f"/api/images/{image_id}/objects", json={"mask_id": square["id"], "name": "square"})
    answer = c.get(f"/api/images/{image_id}/coco.json?segmentation=polygon")
    assert "002-coco-polygons.json" in answer.headers["content-disposition"]
    path = tmp_path / "p.json"
    path.write_text(answer.text)
    coco = COCO(str(path))
    annotation = next(a for a in coco.dataset["annotations"] if a["name"] == "square")
    assert isinstance(annotation["segmentation"], list)  # polygons, not an RLE
    drawn = coco.annToMask(annotation).astype(bool)
    assert abs(int(drawn.sum()) - 3600) < 150
    assert c.get(f"/api/images/{image_id}/coco.json?segmentation=svg").status_code == 422


def test_an_object_is_restored_under_its_id(api) -> None:
    c, image_id = api
    mask = _best(c, image_id)
    base = f"/api/images/{image_id}/objects"
    kept = c.post(base, json={"mask_id": mask["id"], "name": "  a   cat "}).json()
    assert kept["name"] == "a cat"
    assert c.delete(f"{base}/{kept['id']}").status_code == 200
    again = c.post(base, json={"mask_id": mask["id"], "name": "a cat", "id": kept["id"]})
    assert again.status_code == 201 and again.json()["id"] == kept["id"]
    twice = c.post(base, json={"mask_id": mask["id"], "name": "x", "id": kept["id"]})
    assert twice.status_code == 409 and "already kept" in twice.json()["detail"]
    bad = c.post(base, json={"mask_id": mask["id"], "name": "x", "id": "../x"})
    assert bad.status_code == 422 and "id" in bad.json()["detail"]
    blank = c.patch(f"{base}/{kept['id']}", json={"name": "   "})
    assert blank.status_code == 422 and "visible character" in blank.json()["detail"]


def test_kept_objects_per_image_are_bounded() -> None:
    with client(max_objects=2) as c:
        image_id = upload(c, _png(40, 30))["id"]
        mask = _best(c, image_id, (2, 2, 20, 20))
        base = f"/api/images/{image_id}/objects"
        for _ in range(2):
            assert c.post(base, json={"mask_id": mask["id"], "name": "a"}).status_code == 201
        third = c.post(base, json={"mask_id": mask["id"], "name": "a"})
        assert third.status_code == 409 and "2 kept objects, the most" in third.json()["detail"]


def test_kept_masks_are_never_evicted() -> None:
    with client(max_masks=4) as c:
        image_id = upload(c, _png(40, 30))["id"]
        first = _best(c, image_id, (2, 2, 20, 20))
        c.post(f"/api/images/{image_id}/objects", json={"mask_id": first["id"], "name": "a"})
        c.delete(
            f"/api/images/{image_id}/objects/{c.get(f'/api/images/{image_id}/objects').json()['objects'][0]['id']}"
        )
        for _ in range(6):
            _best(c, image_id, (2, 2, 20, 20))
        assert c.get(f"/api/images/{image_id}/masks/{first['id']}").status_code == 200


# ---------------------------------------------------------------- nothing made is lost
def test_images_with_kept_objects_are_not_evicted() -> None:
    with client(max_images=2) as c:
        a = upload(c, _png(40, 30))["id"]
        mask = _best(c, a, (2, 2, 20, 20))
        c.post(f"/api/images/{a}/objects", json={"mask_id": mask["id"], "name": "keep me"})
        b = upload(c, _png(41, 30))["id"]
        upload(c, _png(42, 30))  # evicts b (no objects), not a
        assert c.get(f"/api/images/{a}").status_code == 200
        assert c.get(f"/api/images/{b}").status_code == 404
        d = upload(c, _png(43, 30))["id"]
        mask = _best(c, d, (2, 2, 20, 20))
        c.post(f"/api/images/{d}/objects", json={"mask_id": mask["id"], "name": "me too"})
        full = c.post("/api/images", content=_png(44, 30))
        assert full.status_code == 409
        assert "2 images with kept objects are open" in full.json()["detail"]
        assert "close one" in full.json()["detail"]
        assert c.get(f"/api/images/{a}/objects").json()["objects"][0]["name"] == "keep me"
        bad = c.post("/api/images", content=b"not an image")  # a failure changes nothing
        assert bad.status_code in (409, 415)
        assert len(c.app.state.store) == 2


def test_everything_runs_over_the_servers_cap_are_refused() -> None:
    with client(max_everything_prompts=300) as c:
        image_id = upload(c, _png(40, 30))["id"]
        url = f"/api/images/{image_id}/everything"
        refused = c.post(url, json={"points_per_side": 16, "crop_n_layers": 1})
        assert refused.status_code == 422
        assert "decodes 1280 prompts; this server allows 300 per run" in refused.json()["detail"]
        assert c.get(url).json()["status"] == "none"
        assert c.post(url, json={"points_per_side": 16}).status_code == 202


# ------------------------------------------------------------------ classical backend
@pytest.fixture(scope="module")
def classic():
    from tijeras import load_model

    backend = Backend(load_model("classic"), "classic", "classical backend")
    with TestClient(create_app(ServerSettings(), backend=backend)) as c:
        yield c


def test_the_classic_backend_offers_only_distinct_candidates(classic) -> None:
    """Found by a new user: multimask showed "score 0.000 · 98 px" and identical candidates."""
    image_id = upload(classic, _scene())["id"]
    for prompt in ({"points": [[80, 60]], "labels": [1]}, {"box": [45, 25, 115, 95]}):
        masks = classic.post(f"/api/images/{image_id}/segment", json=prompt).json()["masks"]
        assert 1 <= len(masks) <= 3
        arrays = [decode_coco_rle(m["rle"]).astype(bool) for m in masks]
        assert all(m["area"] >= 16 for m in masks)
        for i in range(len(arrays)):
            for j in range(i + 1, len(arrays)):
                union = (arrays[i] | arrays[j]).sum()
                assert (arrays[i] & arrays[j]).sum() / union <= 0.9


def test_the_classic_backend_runs_everything_through_the_server(classic) -> None:
    image_id = upload(classic, _scene())["id"]
    assert (
        classic.post(f"/api/images/{image_id}/everything", json={"points_per_side": 8}).status_code
        == 202
    )
    state = wait_everything(classic, image_id)
    assert state["status"] == "done", state.get("error")
    assert len(state["masks"]) >= 2


# ----------------------------------------------------------------------------- folder
@pytest.fixture()
def folder(tmp_path: Path):
    for name in ("10.png", "2.png", "1.png"):
        (tmp_path / name).write_bytes(_png(30 + int(name.split(".")[0]), 20))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden.png").write_bytes(_png(5, 5))
    with client(folder=str(tmp_path)) as c:
        yield c, tmp_path


def _open(c: TestClient, name: str) -> dict:
    answer = c.post("/api/folder/open", json={"name": name})
    assert answer.status_code == 201, answer.text
    from helpers.server import wait_ready

    return wait_ready(c, answer.json()["id"])


def test_the_folder_is_listed_in_natural_order(folder) -> None:
    c, path = folder
    listing = c.get("/api/folder").json()
    assert listing["name"] == path.name
    assert [f["name"] for f in listing["files"]] == ["1.png", "2.png", "10.png"]
    assert all(f["objects"] is None for f in listing["files"])
    assert c.get("/api/info").json()["folder"] == path.name
    assert c.get("/api/folder/files/2.png").content == (path / "2.png").read_bytes()
    for name in ("../secret.png", "notes.txt", ".hidden.png", "missing.png"):
        assert c.post("/api/folder/open", json={"name": name}).status_code == 404
        assert c.get(f"/api/folder/files/{name}").status_code == 404
    with client() as plain:
        answer = plain.get("/api/folder")
        assert answer.status_code == 404 and "--folder" in answer.json()["detail"]


def test_folder_objects_outlive_their_image_and_the_coco_file_is_written_when_asked(
    folder,
) -> None:
    c, path = folder
    first = _open(c, "1.png")
    assert first["folder_file"] == "1.png" and first["width"] == 31
    assert c.post("/api/folder/open", json={"name": "1.png"}).json()["id"] == first["id"]
    mask = _best(c, first["id"], (2, 2, 20, 15))
    kept = c.post(f"/api/images/{first['id']}/objects", json={"mask_id": mask["id"], "name": "cat"})
    c.delete(f"/api/images/{first['id']}")  # closed: the folder keeps its object
    assert sorted(p.name for p in path.iterdir()) == [
        ".hidden.png",
        "1.png",
        "10.png",
        "2.png",
        "notes.txt",
    ]
    again = _open(c, "1.png")
    assert again["objects"] == 1
    objects = c.get(f"/api/images/{again['id']}/objects").json()["objects"]
    assert [(o["id"], o["name"]) for o in objects] == [(kept.json()["id"], "cat")]
    restored = c.get(f"/api/images/{again['id']}/masks/{objects[0]['mask_id']}").json()
    assert restored["rle"] == mask["rle"]
    _open(c, "10.png")  # opened, no object: listed in the COCO file as a negative
    assert [f["objects"] for f in c.get("/api/folder").json()["files"]] == [1, None, 0]

    answer = c.post("/api/folder/coco", json={"path": "labels.json"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"path": str(path / "labels.json"), "images": 2, "annotations": 1}
    coco = COCO(str(path / "labels.json"))
    assert [i["file_name"] for i in coco.dataset["images"]] == ["1.png", "10.png"]
    assert [c_["name"] for c_ in coco.dataset["categories"]] == ["cat"]
    exists = c.post("/api/folder/coco", json={"path": "labels.json"})
    assert exists.status_code == 409 and "exists" in exists.json()["detail"]
    over = c.post(
        "/api/folder/coco",
        json={"path": "labels.json", "overwrite": True, "segmentation": "polygon"},
    )
    assert over.status_code == 200
    assert json.loads((path / "labels.json").read_text())["annotations"][0]["name"] == "cat"


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("../outside.json", "outside the served folder"),
        ("/etc/passwd.json", "outside the served folder"),
        ("labels.txt", "must end in .json"),
        ("missing/labels.json", "does not exist"),
    ],
)
def test_the_folder_coco_file_stays_inside_the_folder(folder, target: str, words: str) -> None:
    c, path = folder
    answer = c.post("/api/folder/coco", json={"path": target})
    assert answer.status_code == 422 and words in answer.json()["detail"]
    assert not (path.parent / "outside.json").exists()
