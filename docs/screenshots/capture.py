"""Take the screenshots of the web app shown in the README (docs/screenshots/*.webp).

    .venv/bin/python docs/screenshots/capture.py [--out docs/screenshots]

Runs ``tijeras serve`` twice in its own processes: with ``--model classic`` (no weights needed,
so the pictures can be made on any machine; no fallback banner, since classic was asked for) and
with ``--model mobile-sam --no-download`` and an empty cache (the classical fallback, with its
banner). Debian's chromium, driven by Playwright, opens ``truck.jpg`` from the development data
and is shown at 1366 x 768 and 1920 x 1080 with candidates, kept objects, an everything overlay
and the erased-object preview. Two more pictures at 1366 x 768: the text box on
``--model sam3-test-tiny`` (random weights, so its instances are arbitrary: the picture shows
the page, not SAM 3's quality), a synthetic four-band GeoTIFF (fields on a gradient, EPSG:32631)
opened on ``classic`` with a kept field, and the video mode: 20 frames of the bedroom clip tracked
with ``sam2-test-tiny`` (random weights with objects present, so the masks are arbitrary: the
picture shows the page). They are saved as WebP (quality 90): a fifth of the
PNG's size, with the page's text still sharp. ``--only text,geo`` takes some of them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from helpers.web import CHROMIUM_ARGS, image_point, serve

IMAGES = REPO.parent / "shared" / "data" / "sam_demo_images" / "images"
CLIP = REPO.parent / "shared" / "data" / "sam2_bedroom_clip" / "frames"
SIZES = [(1366, 768), (1920, 1080)]
TRUCK = (0.075, 0.16, 0.97, 0.74)  # the truck's box, as fractions of the image
REAR_WHEEL = (0.245, 0.515, 0.385, 0.72)
FRONT_WHEEL = (0.775, 0.455, 0.915, 0.665)
DOOR = (0.5, 0.3)  # a click on the rear window: the window, and the canopy


def drag_box(page, box: tuple[float, float, float, float]) -> None:
    page.keyboard.press("b")
    page.evaluate("document.getElementById('candidates').replaceChildren()")
    page.mouse.move(*image_point(page, box[0], box[1]))
    page.mouse.down()
    page.mouse.move(*image_point(page, box[2], box[3]), steps=6)
    page.mouse.up()
    page.wait_for_function(
        "document.querySelectorAll('#candidates li').length > 0", timeout=120_000
    )


def keep(page, name: str) -> None:
    count = page.locator("#objects li").count()
    page.fill("#object-name", name)
    page.press("#object-name", "Enter")
    page.wait_for_function(f"document.querySelectorAll('#objects li').length === {count + 1}")


def open_truck(page) -> None:
    page.set_input_files("#file-input", str(IMAGES / "truck.jpg"))
    page.wait_for_selector("#stage[data-ready='1']", timeout=120_000)


def shoot(page, path: Path) -> None:
    """Save a screenshot of the viewport as WebP."""
    import io

    from PIL import Image

    picture = Image.open(io.BytesIO(page.screenshot(type="png")))
    picture.convert("RGB").save(path.with_suffix(".webp"), "WEBP", quality=90, method=6)


def settle(page) -> None:
    page.mouse.move(1, 1)
    page.wait_for_timeout(400)


def labelling(browser, url: str, out: Path, size: tuple[int, int]) -> None:
    tag = f"{size[0]}x{size[1]}"
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    page.goto(url)
    page.wait_for_selector("#model-badge:has-text('classic')")
    open_truck(page)
    page.evaluate("document.getElementById('candidates').replaceChildren()")
    page.mouse.click(*image_point(page, *DOOR))
    page.wait_for_function(
        "document.querySelectorAll('#candidates li').length > 0", timeout=120_000
    )
    settle(page)
    shoot(page, out / f"candidates-{tag}.webp")
    page.keyboard.press("r")
    drag_box(page, TRUCK)
    keep(page, "truck")
    page.keyboard.press("r")
    drag_box(page, FRONT_WHEEL)
    keep(page, "wheel")
    page.keyboard.press("r")
    drag_box(page, REAR_WHEEL)
    keep(page, "wheel")
    page.keyboard.press("r")
    page.evaluate("document.getElementById('panel').scrollTop = 260")
    page.hover("#objects li:nth-child(2)")
    page.wait_for_timeout(300)
    shoot(page, out / f"objects-{tag}.webp")
    page.mouse.move(1, 1)
    page.select_option("#points-per-side", "16")
    page.click("#everything")
    page.wait_for_selector("#stage[data-everything]", timeout=120_000)
    settle(page)
    shoot(page, out / f"everything-{tag}.webp")
    if size == SIZES[0]:
        page.keyboard.press("Escape")
        page.click("#objects li:nth-child(1) button:has-text('select')")
        page.click("#erase-preview")
        page.wait_for_selector("#stage[data-preview='erase']", timeout=60_000)
        settle(page)
        shoot(page, out / f"erase-preview-{tag}.webp")
    page.close()


def fallback(browser, url: str, out: Path, size: tuple[int, int]) -> None:
    tag = f"{size[0]}x{size[1]}"
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    page.goto(url)
    page.wait_for_selector("#fallback-banner", state="visible")
    open_truck(page)
    drag_box(page, TRUCK)
    settle(page)
    shoot(page, out / f"fallback-{tag}.webp")
    page.close()


def text_box(browser, url: str, out: Path) -> None:
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.goto(url)
    page.wait_for_selector("#model-badge:has-text('sam3')")
    page.set_input_files("#file-input", str(IMAGES / "groceries.jpg"))
    page.wait_for_selector("#stage[data-ready='1']", timeout=120_000)
    page.fill("#text-threshold", "0.22")
    page.fill("#text-phrase", "tomato")
    page.press("#text-phrase", "Enter")
    page.wait_for_selector("#stage[data-text]", timeout=120_000)
    page.click("#text-list li:nth-child(1) button")
    page.wait_for_function("document.querySelectorAll('#objects li').length === 1")
    page.evaluate("document.getElementById('text-section').scrollIntoView()")
    settle(page)
    shoot(page, out / "text-1366x768.webp")
    page.close()


def synthetic_geotiff(path: Path) -> Path:
    """Four uint16 bands (blue, green, red, near infrared) of fields on a gradient, 0.5 m pixels."""
    import numpy as np
    import rasterio
    from affine import Affine

    rows, cols = np.mgrid[0:900, 0:1200]
    rng = np.random.default_rng(0)
    base = [900 + cols // 3, 1100 + rows // 3, 1000 + (cols + rows) // 5, 2500 + cols // 4]
    bands = [(b + rng.normal(0, 40, b.shape)).astype(np.float32) for b in base]
    fields = [  # x0, y0, x1, y1, reflectance per band
        (80, 90, 520, 400, (600, 1800, 900, 6000)),
        (600, 120, 1100, 380, (1500, 1900, 2400, 3000)),
        (150, 500, 450, 820, (700, 1500, 800, 5200)),
        (560, 480, 1120, 840, (2200, 2300, 2600, 2800)),
    ]
    for x0, y0, x1, y1, values in fields:
        for band, value in zip(bands, values):
            band[y0:y1, x0:x1] = value + rng.normal(0, 60, (y1 - y0, x1 - x0))
    circle = (cols - 820) ** 2 + (rows - 660) ** 2 < 110**2
    for band, value in zip(bands, (500, 900, 600, 900)):  # a pond
        band[circle] = value
    data = np.clip(np.stack(bands), 0, 65535).astype(np.uint16)
    profile = {
        "driver": "GTiff",
        "width": 1200,
        "height": 900,
        "count": 4,
        "dtype": "uint16",
        "crs": "EPSG:32631",
        "transform": Affine(0.5, 0, 430000.0, 0, -0.5, 4582000.0),
    }
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(data)
    return path


def geotiff(browser, url: str, out: Path, tmp: Path) -> None:
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.goto(url)
    page.wait_for_selector("#model-badge:has-text('classic')")
    page.set_input_files("#file-input", str(synthetic_geotiff(tmp / "fields.tif")))
    page.wait_for_selector("#stage[data-ready='1']", timeout=120_000)
    page.wait_for_selector("#geo-section:not([hidden])")
    page.select_option("#geo-r", "4")
    page.select_option("#geo-g", "3")
    page.select_option("#geo-b", "2")
    page.click("#geo-apply")
    page.wait_for_function("document.getElementById('geo-info').textContent.includes('4,3,2')")
    page.wait_for_selector("#stage[data-ready='1']", timeout=120_000)
    drag_box(page, (0.05, 0.08, 0.45, 0.47))
    keep(page, "field")
    page.keyboard.press("r")
    drag_box(page, (0.57, 0.6, 0.8, 0.87))
    keep(page, "pond")
    page.keyboard.press("r")
    page.evaluate("document.getElementById('geo-section').scrollIntoView()")
    settle(page)
    shoot(page, out / "geotiff-1366x768.webp")
    page.close()


def video_mode(browser, url: str, out: Path, tmp: Path) -> None:
    """The first 20 frames of the bedroom clip, a click on frame 0, tracked, shown at frame 14."""
    from helpers.video import folder_clip

    folder_clip(CLIP, tmp / "bedroom.mp4", frames=20, fps=24.0)
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.goto(url)
    page.wait_for_selector("#model-badge:has-text('classic')")
    page.set_input_files("#video-input", str(tmp / "bedroom.mp4"))
    page.wait_for_selector("#video-stage[data-video-id]", timeout=120_000)
    box = page.locator("#video-frame").bounding_box()
    page.mouse.click(box["x"] + 0.22 * box["width"], box["y"] + 0.66 * box["height"])
    page.wait_for_selector("#video-stage[data-masks='1']", timeout=120_000)
    page.click("#video-track")
    page.wait_for_selector("#video-view[data-track='done']", timeout=300_000)
    page.fill("#video-frame-number", "14")
    page.press("#video-frame-number", "Enter")
    page.wait_for_selector("#video-stage[data-mask-frame='14'][data-masks='1']")
    page.evaluate("document.getElementById('toasts').replaceChildren()")
    settle(page)
    shoot(page, out / "video-1366x768.webp")
    page.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument(
        "--only", default="labelling,fallback,text,geo,video", help="comma-separated sets to take"
    )
    args = parser.parse_args()
    only = set(args.only.split(","))
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp_name, sync_playwright() as p:
        tmp = Path(tmp_name)
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        (tmp / "a").mkdir()
        if only & {"labelling", "geo"}:
            for url in serve(["--model", "classic"], tmp / "a"):
                for size in SIZES if "labelling" in only else []:
                    labelling(browser, url, args.out, size)
                if "geo" in only:
                    geotiff(browser, url, args.out, tmp)
        (tmp / "b").mkdir()
        if "fallback" in only:
            for url in serve(["--model", "mobile-sam", "--no-download"], tmp / "b"):
                for size in SIZES:
                    fallback(browser, url, args.out, size)
        (tmp / "c").mkdir()
        if "text" in only:
            for url in serve(["--model", "sam3-test-tiny"], tmp / "c"):
                text_box(browser, url, args.out)
        (tmp / "d").mkdir()
        if "video" in only:
            from helpers.video import present_checkpoint

            checkpoint = str(present_checkpoint(tmp / "d" / "sam2-present.pt"))
            video_args = ["--video-model", "sam2-test-tiny", "--video-checkpoint", checkpoint]
            for url in serve(["--model", "classic", *video_args], tmp / "d"):
                video_mode(browser, url, args.out, tmp)
        browser.close()
    for path in sorted(args.out.glob("*.webp")):
        print(f"{path.relative_to(REPO)}  {path.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
