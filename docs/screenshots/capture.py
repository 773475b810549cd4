"""Take the screenshots of the web app shown in the README (docs/screenshots/*.webp).

    .venv/bin/python docs/screenshots/capture.py [--out docs/screenshots]

Runs ``tijeras serve`` twice in its own processes: with ``--model classic`` (no weights needed,
so the pictures can be made on any machine; no fallback banner, since classic was asked for) and
with ``--model mobile-sam --no-download`` and an empty cache (the classical fallback, with its
banner). Debian's chromium, driven by Playwright, opens ``truck.jpg`` from the development data
and is shown at 1366 x 768 and 1920 x 1080 with candidates, kept objects, an everything overlay
and the erased-object preview. They are saved as WebP (quality 90): a fifth of the PNG's size,
with the page's text still sharp.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp_name, sync_playwright() as p:
        tmp = Path(tmp_name)
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        (tmp / "a").mkdir()
        for url in serve(["--model", "classic"], tmp / "a"):
            for size in SIZES:
                labelling(browser, url, args.out, size)
        (tmp / "b").mkdir()
        for url in serve(["--model", "mobile-sam", "--no-download"], tmp / "b"):
            for size in SIZES:
                fallback(browser, url, args.out, size)
        browser.close()
    for path in sorted(args.out.glob("*.webp")):
        print(f"{path.relative_to(REPO)}  {path.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
