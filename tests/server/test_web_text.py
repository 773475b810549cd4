"""The text box in a real browser on a real ``tijeras serve --model sam3-test-tiny``: every
instance of a phrase drawn and listed, kept one by one or all at once under the phrase, a
phrase that matches nothing said plainly, errors in a toast; and the box disabled, saying which
models take text, on a model without text prompts.

The random tiny model finds arbitrary instances, so the outcome is set by the score threshold:
0 answers every query (16), 1 answers none."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers.data import data_path
from helpers.web import count_painted, get_json, image_point, open_file, serve, toasts

from tijeras.io import decode_coco_rle


@pytest.fixture(scope="module")
def groceries() -> Path:
    """The groceries photo (the tests skip with a message where the data folder is absent)."""
    return data_path("sam_demo_images", "images", "groceries.jpg")


@pytest.fixture(scope="module")
def text_server(tmp_path_factory) -> Iterator[str]:
    yield from serve(["--model", "sam3-test-tiny"], tmp_path_factory.mktemp("text-server"))


@pytest.fixture()
def text_page(browser, text_server: str):
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(text_server)
    page.wait_for_selector("#model-badge:has-text('sam3-test-tiny')")
    yield page
    context.close()
    assert errors == [], errors


def _find(page, phrase: str, threshold: float) -> None:
    page.fill("#text-threshold", str(threshold))
    page.evaluate("document.getElementById('text-note').textContent = ''")
    page.fill("#text-phrase", phrase)
    page.press("#text-phrase", "Enter")
    page.wait_for_function(
        "(t) => { const note = document.getElementById('text-note').textContent;"
        " return note.includes(t) && !note.startsWith('Finding'); }",
        arg=phrase,
    )


def test_every_instance_is_drawn_listed_and_kept_by_the_phrase(
    text_page, text_server: str, groceries: Path
) -> None:
    page = text_page
    image_id = open_file(page, groceries)
    assert page.locator("#text-phrase").is_enabled()
    _find(page, "tomato", 0)
    rows = page.locator("#text-list li")
    assert rows.count() == 16 and page.get_attribute("#stage", "data-text") == "16"
    assert rows.nth(0).inner_text().startswith("tomato 1 · score")
    assert rows.nth(1).inner_text().startswith("tomato 2 · score")
    assert count_painted(page, "text-canvas") > 0 and count_painted(page, "text-outline") > 0

    rows.nth(1).locator("button").click()  # keep one
    page.wait_for_function("document.querySelectorAll('#objects li').length === 1")
    assert page.locator("#objects li input").input_value() == "tomato"
    assert rows.nth(1).locator("button").inner_text() == "kept"

    page.click("#text-keep-all")
    page.wait_for_function("document.querySelectorAll('#objects li').length === 16", timeout=60_000)
    objects = get_json(f"{text_server}/api/images/{image_id}/objects")["objects"]
    assert len(objects) == 16 and {o["name"] for o in objects} == {"tomato"}
    assert page.locator("#text-keep-all").is_disabled()

    # instances kept under one phrase download under numbered names, never the same file
    names = []
    for row in (0, 1):
        page.locator("#objects li").nth(row).locator("button", has_text="select").click()
        with page.expect_download() as info:
            page.click("#dl-cutout")
        names.append(info.value.suggested_filename)
    assert names[0] != names[1] and all("tomato-" in name for name in names), names

    # a click on an instance drawn on the image selects it (the smallest one there)
    ids = rows.evaluate_all("rows => rows.map(r => r.dataset.maskId)")
    rle = get_json(f"{text_server}/api/images/{image_id}/masks/{ids[0]}")["rle"]
    inside = np.argwhere(decode_coco_rle(rle))
    y, x = inside[len(inside) // 2]
    h, w = rle["size"]
    page.mouse.click(*image_point(page, (x + 0.5) / w, (y + 0.5) / h))
    page.wait_for_function("document.getElementById('stage').dataset.selected")
    assert page.get_attribute("#stage", "data-selected") in ids
    page.keyboard.press("Escape")
    assert page.get_attribute("#stage", "data-text") is None
    assert count_painted(page, "text-canvas") == 0


def test_nothing_found_is_said_and_errors_reach_a_toast(text_page, groceries: Path) -> None:
    page = text_page
    open_file(page, groceries)
    _find(page, "purple elephant", 1)
    note = page.locator("#text-note")
    assert note.inner_text().startswith("No purple elephant found (score above 1)")
    assert note.is_visible() and page.locator("#text-list li").count() == 0
    assert "No purple elephant found" in page.inner_text("#status")
    assert toasts(page) == []

    page.fill("#text-phrase", "apple " * 40)
    page.press("#text-phrase", "Enter")
    page.wait_for_selector("#toasts .toast.error")
    assert "context length is 32" in toasts(page)[0]


def test_a_model_without_text_disables_the_box_and_names_sam3(page, truck_path: Path) -> None:
    open_file(page, truck_path)
    assert page.locator("#text-phrase").is_disabled() and page.locator("#text-find").is_disabled()
    why = page.get_attribute("#text-row", "title")
    assert "SAM 3" in why and "--model sam3" in why and "test-tiny does not" in why
    assert page.locator("#text-unsupported").is_visible()
