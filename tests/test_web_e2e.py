"""End-to-end: a real browser (Debian's chromium driven by Playwright) on a real server.

The server runs ``tijeras serve`` in its own process on the tiny random model (or with no
weights at all, for the fallback test). A screenshot of the page is kept in
``artifacts/web-app.png``.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from tijeras.io.rle import coco_rle, decode_coco_rle

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed (scripts/test installs it with apt)",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(args: list[str], tmp: Path) -> Iterator[str]:
    port = _free_port()
    env = dict(os.environ, TIJERAS_CACHE=str(tmp / "cache"), PYTHONUNBUFFERED="1")
    log = open(tmp / "server.log", "w")  # noqa: SIM115  (closed below)
    process = subprocess.Popen(
        [sys.executable, "-m", "tijeras", "serve", "--port", str(port), *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/info", timeout=2).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((tmp / "server.log").read_text()) from None
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(20)
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, truck_path: Path) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("server")
    yield from _serve(["--model", "test-tiny", "--samples", str(truck_path.parent)], tmp)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


def _count_painted(page, canvas: str) -> int:
    return page.evaluate(
        """(id) => { const c = document.getElementById(id);
        if (!c.width) return 0;
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }""",
        canvas,
    )


def _image_point(page, fx: float, fy: float) -> tuple[float, float]:
    box = page.locator("#image").bounding_box()
    return box["x"] + fx * box["width"], box["y"] + fy * box["height"]


def test_a_full_session_in_the_browser(server: str, browser, truck_path: Path, tmp_path) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 950}, accept_downloads=True)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server)
    page.wait_for_selector("#model-badge:has-text('test-tiny')")
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
    assert errors == []

    # closing the image deletes it on the server
    page.click("#delete-image")
    page.wait_for_selector("#stage", state="hidden")
    with pytest.raises(urllib.error.HTTPError) as gone:
        urllib.request.urlopen(f"{server}/api/images/{image_id}")
    assert gone.value.code == 404
    page.close()


@pytest.mark.parametrize("shape", [(683, 1024), (37, 53), (1, 1)])
def test_the_page_paints_exactly_the_mask(server: str, browser, shape) -> None:
    """The page's RLE painting (transposed spans drawn with swapped axes) covers exactly the
    mask's pixels, on odd sizes too."""
    rng = np.random.default_rng(shape[0])
    mask = rng.random(shape) > 0.5
    if shape[0] > 100:  # a large object as hover shows them, plus noise
        yy, xx = np.mgrid[: shape[0], : shape[1]]
        mask |= (yy - 340) ** 2 + (xx - 500) ** 2 < 300**2
    page = browser.new_page()
    page.goto(server)
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
    page.close()
    assert painted[:2] == [shape[1], shape[0]]
    assert np.array_equal(np.array(painted[2], dtype=bool).reshape(shape), mask)


def test_the_page_reports_the_classical_fallback(browser, tmp_path: Path) -> None:
    for url in _serve(["--model", "sam-vit-b", "--no-download"], tmp_path):
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("#fallback-banner", state="visible")
        banner = page.inner_text("#fallback-banner")
        assert "Classical fallback active" in banner
        assert "no weights for sam-vit-b" in banner
        assert "tijeras download sam-vit-b" in banner
        assert "classic" in page.inner_text("#model-badge")
        picture = io.BytesIO()
        Image.new("RGB", (200, 150), (30, 140, 90)).save(picture, format="PNG")
        path = tmp_path / "flat.png"
        path.write_bytes(picture.getvalue())
        page.set_input_files("#file-input", str(path))
        page.wait_for_selector("#stage[data-ready='1']", timeout=60_000)
        page.close()
