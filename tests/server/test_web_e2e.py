"""End-to-end: a real browser (Debian's chromium driven by Playwright) on a real server.

The server runs ``tijeras serve`` in its own process on the tiny random model (or with no
weights at all, for the fallback test). A screenshot of the page is kept in
``artifacts/web-app.png``.
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.web import close_confirmed, count_painted, image_point, serve, status_of
from PIL import Image

from tijeras.io.rle import coco_rle, decode_coco_rle

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
_count_painted = count_painted
_image_point = image_point


def test_a_full_session_in_the_browser(server: str, page, truck_path: Path, tmp_path) -> None:
    page.set_viewport_size({"width": 1400, "height": 950})
    assert page.locator("#samples button", has_text="truck.jpg").count() == 1
    assert page.locator("#fallback-banner").is_hidden()

    page.set_input_files("#file-input", str(truck_path))
    page.wait_for_selector("#stage[data-ready='1']", timeout=60_000)
    image_id = page.get_attribute("#stage", "data-image-id")

    # hover: the mask under the cursor is drawn
    for fx in (0.30, 0.32, 0.34):
        page.mouse.move(*_image_point(page, fx, 0.40))
        page.wait_for_timeout(50)
    page.wait_for_selector("#stage[data-hover-seq]", timeout=10_000)
    assert _count_painted(page, "hover-canvas") > 0

    # click: three candidates; choose the second
    page.mouse.click(*_image_point(page, 0.30, 0.40))
    page.wait_for_function("document.querySelectorAll('#candidates li').length === 3")
    assert page.locator("#marks circle").count() == 1
    second = page.locator("#candidates li").nth(1)
    second.click()
    assert "selected" in second.get_attribute("class")
    assert page.get_attribute("#stage", "data-selected") == second.get_attribute("data-mask-id")
    assert _count_painted(page, "mask-canvas") > 0

    # background point by right-click, then undo it
    page.mouse.click(*_image_point(page, 0.8, 0.2), button="right")
    page.wait_for_function("document.querySelectorAll('#marks circle').length === 2")
    assert page.locator("#marks circle").nth(1).get_attribute("fill") == "#d62828"
    page.keyboard.press("Control+z")
    page.wait_for_function("document.querySelectorAll('#marks circle').length === 1")

    # box: reset, box tool, drag
    page.keyboard.press("r")
    page.keyboard.press("b")
    page.mouse.move(*_image_point(page, 0.10, 0.15))
    page.mouse.down()
    page.mouse.move(*_image_point(page, 0.40, 0.45), steps=5)
    page.mouse.move(*_image_point(page, 0.60, 0.70), steps=5)
    page.mouse.up()
    page.wait_for_selector("#marks rect")
    page.wait_for_function("document.querySelectorAll('#candidates li').length === 3")
    assert page.locator("#marks circle").count() == 0

    # everything: coloured overlay; clicking a mask selects it
    page.select_option("#points-per-side", "8")
    page.fill("#iou-thresh", "0")  # random weights: keep every candidate
    page.fill("#stability-thresh", "0")
    page.click("#everything")
    page.wait_for_selector("#stage[data-everything]", timeout=120_000)
    assert int(page.get_attribute("#stage", "data-everything")) > 0
    assert _count_painted(page, "everything-canvas") > 0
    found = json.loads(urllib.request.urlopen(f"{server}/api/images/{image_id}/everything").read())
    target = min(found["masks"], key=lambda m: m["area"])
    region = np.pad(decode_coco_rle(target["rle"]).astype(np.uint8), 1)
    depth = cv2.distanceTransform(region, cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)  # the mask's deepest pixel
    inside = (x + 0.5) / 1800, (y + 0.5) / 1200
    page.mouse.click(*_image_point(page, *inside))
    page.wait_for_function("document.querySelectorAll('#candidates li').length === 1")
    selected = page.get_attribute("#stage", "data-selected")
    assert selected == target["id"]  # the smallest mask under the cursor

    # keep it under a name, then download its cut-out and the COCO file
    page.fill("#object-name", "truck")
    page.click("#keep")
    page.wait_for_selector("#objects li")
    page.keyboard.press("Escape")  # hide the everything overlay
    assert page.locator("#objects li input").input_value() == "truck"
    with page.expect_download() as info:
        page.click("#dl-cutout")
    cutout = tmp_path / "cutout.png"
    info.value.save_as(cutout)
    mask = json.loads(
        urllib.request.urlopen(f"{server}/api/images/{image_id}/masks/{selected}").read()
    )
    picture = Image.open(cutout)
    assert picture.mode == "RGBA"
    x, y, w, h = (int(v) for v in mask["bbox"])
    assert picture.size == (w, h)
    alpha = np.array(picture)[..., 3]
    assert int((alpha > 0).sum()) == mask["area"] and (alpha == 0).any()
    with page.expect_download() as info:
        page.click("#dl-coco")
    coco = json.loads(Path(info.value.path()).read_text())
    assert [a["name"] for a in coco["annotations"]] == ["truck"]

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-app.png"), full_page=True)

    # closing an image with a kept object asks first; then the server forgets it
    close_confirmed(page, "#close-image", image_id)
    page.wait_for_selector("#stage", state="hidden")
    assert status_of(f"{server}/api/images/{image_id}") == 404


@pytest.mark.parametrize("shape", [(683, 1024), (37, 53), (1, 1)])
def test_the_page_paints_exactly_the_mask(page, shape) -> None:
    """The page's RLE painting (transposed spans drawn with swapped axes) covers exactly the
    mask's pixels, on odd sizes too."""
    rng = np.random.default_rng(shape[0])
    mask = rng.random(shape) > 0.5
    if shape[0] > 100:  # a large object as hover shows them, plus noise
        yy, xx = np.mgrid[: shape[0], : shape[1]]
        mask |= (yy - 340) ** 2 + (xx - 500) ** 2 < 300**2
    painted = page.evaluate(
        """async (rle) => {
        const { paintMask } = await import('/static/mask.js');
        const c = document.createElement('canvas');
        paintMask(c, rle, [255, 0, 0, 128]);
        paintMask(c, rle, [255, 0, 0, 128]);  // a repaint reuses the buffers
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const a = []; for (let i = 3; i < d.length; i += 4) a.push(d[i] ? 1 : 0);
        return [c.width, c.height, a]; }""",
        coco_rle(mask[None])[0],
    )
    assert painted[:2] == [shape[1], shape[0]]
    assert np.array_equal(np.array(painted[2], dtype=bool).reshape(shape), mask)


def test_the_page_reports_the_classical_fallback(browser, tmp_path: Path) -> None:
    """The banner is one line with a details toggle, and the image stays in view under it
    (1366 x 768)."""
    for url in serve(["--model", "sam-vit-b", "--no-download"], tmp_path):
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.goto(url)
        page.wait_for_selector("#fallback-banner", state="visible")
        line = page.inner_text("#fallback-banner .line")
        assert "Classical fallback" in line and "GrabCut" in line
        assert page.locator("#fallback-banner").bounding_box()["height"] < 40  # one line
        assert page.locator("#fallback-details-text").is_hidden()
        page.click("#fallback-details")
        details = page.inner_text("#fallback-details-text")
        assert "no weights for sam-vit-b" in details
        assert "tijeras download sam-vit-b" in details
        assert "classic" in page.inner_text("#model-badge")
        picture = io.BytesIO()
        Image.new("RGB", (2400, 1600), (30, 140, 90)).save(picture, format="PNG")
        path = tmp_path / "flat.png"
        path.write_bytes(picture.getvalue())
        page.set_input_files("#file-input", str(path))
        page.wait_for_selector("#stage[data-ready='1']", timeout=60_000)
        shown = page.locator("#image").bounding_box()
        assert shown["y"] >= 0 and shown["y"] + shown["height"] <= 768
        assert shown["x"] + shown["width"] <= 1366
        page.close()
