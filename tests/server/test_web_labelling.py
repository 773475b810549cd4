"""The page as a labelling tool, in a real browser on a real server: one test per problem a new
user met (nothing lost by a mistake, nothing frozen, candidates one can tell apart, downloads
named after the image and object, every error shown, a layout that fits, the object list, slow
hover), and the labelling workflow (undo/redo, brush, everything's list, erase preview)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers.web import (
    click_object,
    close_confirmed,
    count_painted,
    get_json,
    image_point,
    open_file,
    status_of,
    toasts,
)
from PIL import Image


def _objects(server: str, image_id: str) -> list[dict]:
    return get_json(f"{server}/api/images/{image_id}/objects")["objects"]


def _keep(page, name: str) -> None:
    before = page.locator("#objects li").count()
    page.fill("#object-name", name)
    page.press("#object-name", "Enter")
    page.wait_for_function(f"document.querySelectorAll('#objects li').length === {before + 1}")


# ------------------------------------------------------------------- 1. nothing is lost
def test_a_failed_upload_keeps_the_open_image_and_its_objects(
    page, server: str, truck_path: Path, tmp_path: Path
) -> None:
    image_id = open_file(page, truck_path)
    click_object(page)
    _keep(page, "truck")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    page.set_input_files("#file-input", str(notes))
    page.wait_for_selector("#toasts .toast.error")
    assert "Cannot open notes.txt" in toasts(page)[0] and "not a supported image" in toasts(page)[0]
    assert page.get_attribute("#stage", "data-image-id") == image_id  # still shown
    assert page.locator("#tabs .tab").count() == 1
    assert [o["name"] for o in _objects(server, image_id)] == ["truck"]
    assert page.locator("#objects li input").input_value() == "truck"

    # a second image opens beside the first, which keeps its objects
    small = tmp_path / "small.png"
    Image.new("RGB", (64, 48), (20, 120, 200)).save(small)
    second = open_file(page, small)
    assert page.locator("#tabs .tab").count() == 2 and second != image_id
    page.click(f"#tabs .tab[data-image-id='{image_id}']")
    page.wait_for_selector(f"#stage[data-image-id='{image_id}']")
    assert page.locator("#objects li").count() == 1

    # closing an image with kept objects asks first; Cancel keeps it
    page.click(f"#tabs .tab[data-image-id='{image_id}'] .close")
    page.wait_for_selector("#confirm[open]")
    assert "1 kept object" in page.inner_text("#confirm-text")
    page.click("#confirm button[value='cancel']")
    assert page.locator("#tabs .tab").count() == 2
    assert status_of(f"{server}/api/images/{image_id}") == 200
    close_confirmed(page, f"#tabs .tab[data-image-id='{image_id}'] .close", image_id)
    page.wait_for_function("document.querySelectorAll('#tabs .tab').length === 1")
    assert status_of(f"{server}/api/images/{image_id}") == 404


# ------------------------------------------------------- 2. everything with no result
def test_everything_without_results_says_so_and_the_page_still_answers(
    page, truck_path: Path
) -> None:
    open_file(page, truck_path)
    page.select_option("#points-per-side", "8")
    page.fill("#iou-thresh", "1")
    page.fill("#stability-thresh", "1")
    page.click("#everything")
    page.wait_for_selector("#everything-lower")
    note = page.inner_text("#everything-note")
    assert "found no object with predicted IoU ≥ 1 and stability ≥ 1" in note
    assert page.get_attribute("#stage", "data-everything") is None  # no overlay mode
    # hover and clicks still work
    page.mouse.move(*image_point(page, 0.5, 0.5))
    page.mouse.move(*image_point(page, 0.52, 0.5))
    page.wait_for_selector("#stage[data-hover-seq]")
    click_object(page, 0.5, 0.5)
    # the offered lower thresholds are filled in and run
    page.click("#everything-lower")
    assert page.input_value("#iou-thresh") == "0.5"
    assert page.input_value("#stability-thresh") == "0.8"
    page.wait_for_function("!document.querySelector('#everything').disabled")


# --------------------------------------------------------- 3. candidates one can tell apart
def test_candidates_are_labelled_thumbnails_and_objects_are_drawn_with_names(
    page, server: str, truck_path: Path
) -> None:
    image_id = open_file(page, truck_path)
    click_object(page)
    items = page.locator("#candidates li")
    assert items.count() == 3
    assert page.locator("#candidates li canvas").count() == 3  # thumbnails
    labels = {}
    for i in range(3):
        mask_id = items.nth(i).get_attribute("data-mask-id")
        text = items.nth(i).inner_text()
        assert "IoU " in text
        labels[mask_id] = text.split("·")[1].split("\n")[0].strip()
    areas = {m: get_json(f"{server}/api/images/{image_id}/masks/{m}")["area"] for m in labels}
    by_area = sorted(labels, key=lambda m: -areas[m])
    assert [labels[m] for m in by_area] == ["whole", "part", "subpart"]
    assert count_painted(page, "mask-outline") > 0  # the selection is outlined
    selected = page.get_attribute("#stage", "data-selected")
    _keep(page, "truck")
    assert count_painted(page, "objects-canvas") > 0
    assert page.locator("#labels text").all_text_contents() == ["truck"]
    page.hover("#objects li")
    assert page.get_attribute("#stage", "data-highlight") == selected
    assert count_painted(page, "highlight-canvas") > 0
    assert "hot" in page.get_attribute("#labels text", "class")
    page.mouse.move(5, 5)
    assert count_painted(page, "highlight-canvas") == 0


# ------------------------------------------------------------- 4. download names
def test_downloads_are_named_after_the_image_and_the_object(
    page, truck_path: Path, tmp_path: Path
) -> None:
    named = tmp_path / "002.jpg"
    shutil.copy(truck_path, named)
    open_file(page, named)
    click_object(page)
    _keep(page, "penguin")
    expected = {
        "#dl-cutout": "002-penguin-cutout.png",
        "#dl-mask": "002-penguin-mask.png",
        "#dl-sticker": "002-penguin-sticker.webp",
        "#dl-erase": "002-penguin-erased.jpg",
        "#dl-inpaint": "002-penguin-inpaint-mask.png",
        "#dl-coco": "002-coco.json",
    }
    for selector, name in expected.items():
        with page.expect_download() as info:
            page.click(selector)
        assert info.value.suggested_filename == name
    sticker = tmp_path / "s.webp"
    with page.expect_download() as info:
        page.click("#dl-sticker")
    info.value.save_as(sticker)
    with Image.open(sticker) as picture:
        assert picture.size == (512, 512) and picture.mode == "RGBA"


# ------------------------------------------------------------- 5. errors are shown
def test_every_error_reaches_the_page(page, server: str, truck_path: Path) -> None:
    image_id = open_file(page, truck_path)
    click_object(page)
    page.fill("#erase-dilate", "999")
    page.click("#dl-inpaint")
    page.wait_for_selector("#toasts .toast.error")
    assert "dilate" in toasts(page)[-1] and "500" in toasts(page)[-1]
    page.click("#dl-erase")
    page.wait_for_function("document.querySelectorAll('#toasts .toast.error').length === 2")
    assert "dilate" in toasts(page)[-1] and "100" in toasts(page)[-1]
    # the server forgot the image behind the page's back: a click says so
    import urllib.request

    request = urllib.request.Request(f"{server}/api/images/{image_id}", method="DELETE")
    urllib.request.urlopen(request).read()
    page.mouse.click(*image_point(page, 0.6, 0.6))
    page.wait_for_function("document.querySelectorAll('#toasts .toast.error').length === 3")
    assert "no image with id" in toasts(page)[-1]


# ----------------------------------------------------------------------- 6. layout
def test_the_layout_fits_1366_by_768(page, truck_path: Path, tmp_path: Path) -> None:
    open_file(page, truck_path)
    panel = page.evaluate(
        "(() => { const p = document.getElementById('panel');"
        " return [p.scrollHeight, p.clientHeight, document.documentElement.scrollHeight,"
        " window.innerHeight]; })()"
    )
    assert panel[0] > panel[1]  # the panel scrolls on its own...
    assert panel[2] <= panel[3]  # ...and the page does not
    page.evaluate("document.getElementById('panel').scrollTop = 10000")
    shown = page.locator("#image").bounding_box()
    assert shown["y"] >= 0 and shown["y"] + shown["height"] <= 768  # the image stays in view
    assert shown["width"] > 900  # a large image fills the free width (1800 px shown smaller)
    # a small image is scaled up to fit
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (40, 30), (200, 40, 40)).save(tiny)
    open_file(page, tiny)
    small = page.locator("#image").bounding_box()
    assert small["width"] > 40 * 10 and small["height"] <= 768
    # the hover mask is cleared when the cursor leaves the image
    for fx in (0.4, 0.45, 0.5):
        page.mouse.move(*image_point(page, fx, 0.5))
    page.wait_for_selector("#stage[data-hover-seq]")
    page.wait_for_function(
        "(() => { const c = document.getElementById('hover-canvas');"
        " return c.width && c.getContext('2d').getImageData(0, 0, c.width, c.height)"
        ".data.some((v, i) => i % 4 === 3 && v); })()"
    )
    page.mouse.move(2, 400)
    assert count_painted(page, "hover-canvas") == 0


# ------------------------------------------------------------------ 7. object list
def test_the_object_list_keeps_renames_and_deletes_in_place(
    page, server: str, truck_path: Path
) -> None:
    image_id = open_file(page, truck_path)
    click_object(page)
    assert page.inner_text("#keep") == "Keep as “object”"
    page.fill("#object-name", "car")
    assert page.inner_text("#keep") == "Keep as “car”"
    page.press("#object-name", "Enter")  # Enter keeps
    page.wait_for_selector("#objects li")
    page.keyboard.press("2")  # keys act on the image again: choose another candidate
    # the next object shows the name it will get, and names used before are suggested
    assert page.inner_text("#keep") == "Keep as “car”"
    options = page.eval_on_selector_all("#recent-names option", "os => os.map(o => o.value)")
    assert options == ["car"]
    page.keyboard.press("k")
    page.wait_for_function("document.querySelectorAll('#objects li').length === 2")
    assert [o["name"] for o in _objects(server, image_id)] == ["car", "car"]
    # rename in place
    field = page.locator("#objects li input").nth(1)
    field.fill("wheel")
    field.press("Enter")
    page.wait_for_function(
        f"fetch('/api/images/{image_id}/objects').then(r => r.json())"
        ".then(b => b.objects[1].name === 'wheel')"
    )
    # delete in place, then undo brings it back under the same id
    kept = _objects(server, image_id)
    page.click("#objects li:nth-child(1) button.danger")
    page.wait_for_function("document.querySelectorAll('#objects li').length === 1")
    assert [o["id"] for o in _objects(server, image_id)] == [kept[1]["id"]]
    page.keyboard.press("Control+z")
    page.wait_for_function("document.querySelectorAll('#objects li').length === 2")
    assert {o["id"] for o in _objects(server, image_id)} == {kept[0]["id"], kept[1]["id"]}


# ---------------------------------------------------------------- 8. slow hover
SLOW_SOCKET = """
(() => {
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    set onmessage(handler) {
      super.onmessage = (event) => setTimeout(() => handler(event), 900);
    }
  };
})();
"""


def test_a_slow_hover_never_shows_a_mask_the_cursor_left(browser, server, truck_path) -> None:
    """Every hover answer arrives 0.9 s late (as with the classical backend): the page shows
    a busy cursor, drops the answer for a place the cursor left, and draws the newest."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    context.add_init_script(SLOW_SOCKET)
    page = context.new_page()
    page.goto(server)
    open_file(page, truck_path)
    page.mouse.move(*image_point(page, 0.3, 0.4))
    page.wait_for_function("document.getElementById('stage').style.cursor === 'progress'")
    page.mouse.move(*image_point(page, 0.7, 0.6), steps=3)  # away from the first point
    page.wait_for_selector("#stage[data-hover-dropped='1']", timeout=10_000)
    assert count_painted(page, "hover-canvas") == 0
    page.wait_for_selector("#stage[data-hover-seq='2']", timeout=10_000)
    assert count_painted(page, "hover-canvas") > 0
    page.wait_for_function("document.getElementById('stage').style.cursor === 'crosshair'")
    page.mouse.move(3, 300)  # leaving the image clears it
    assert count_painted(page, "hover-canvas") == 0
    context.close()


# ------------------------------------------------------------ labelling workflow
def test_undo_and_redo_every_step(page, server: str, truck_path: Path) -> None:
    image_id = open_file(page, truck_path)
    click_object(page, 0.3, 0.4)
    first = page.get_attribute("#stage", "data-selected")
    page.mouse.click(*image_point(page, 0.8, 0.2), button="right")
    page.wait_for_function("document.querySelectorAll('#marks circle').length === 2")
    page.wait_for_function(f"document.getElementById('stage').dataset.selected !== '{first}'")
    assert page.get_attribute("#marks circle:nth-child(2)", "fill") == "#d62828"
    page.keyboard.press("3")
    third = page.locator("#candidates li").nth(2).get_attribute("data-mask-id")
    page.wait_for_selector(f"#stage[data-selected='{third}']")
    _keep(page, "truck")
    steps = [  # what each undo takes back, checked after it
        ("document.querySelectorAll('#objects li').length === 0", "keep"),
        (f"document.getElementById('stage').dataset.selected !== '{third}'", "choose"),
        ("document.querySelectorAll('#marks circle').length === 1", "background point"),
        ("document.querySelectorAll('#marks circle').length === 0", "point"),
    ]
    for condition, _ in steps:
        page.keyboard.press("Control+z")
        page.wait_for_function(condition)
    assert _objects(server, image_id) == []
    for _ in steps:
        page.keyboard.press("Control+Shift+z")
    page.wait_for_function("document.querySelectorAll('#objects li').length === 1")
    assert page.locator("#marks circle").count() == 2
    assert page.get_attribute("#stage", "data-selected") == third
    assert [o["name"] for o in _objects(server, image_id)] == ["truck"]


def test_the_brush_adds_and_erases_pixels(page, server: str, tmp_path: Path) -> None:
    picture = tmp_path / "plain.png"
    Image.new("RGB", (400, 300), (90, 90, 90)).save(picture)
    image_id = open_file(page, picture)
    click_object(page, 0.5, 0.5)
    first = page.get_attribute("#stage", "data-selected")
    area = get_json(f"{server}/api/images/{image_id}/masks/{first}")["area"]
    page.keyboard.press("p")
    page.select_option("#brush-mode", "erase")
    page.fill("#brush-size", "60")
    page.mouse.move(*image_point(page, 0.1, 0.5))
    page.mouse.down()
    page.mouse.move(*image_point(page, 0.9, 0.5), steps=8)
    page.mouse.up()
    page.wait_for_function(f"document.getElementById('stage').dataset.selected !== '{first}'")
    erased = get_json(
        f"{server}/api/images/{image_id}/masks/{page.get_attribute('#stage', 'data-selected')}"
    )
    assert erased["source"] == "edited" and erased["area"] < area
    page.keyboard.press("Control+z")
    page.wait_for_selector(f"#stage[data-selected='{first}']")


def test_everything_results_are_kept_in_one_click_each(page, server, truck_path) -> None:
    image_id = open_file(page, truck_path)
    page.select_option("#points-per-side", "8")
    page.fill("#iou-thresh", "0")
    page.fill("#stability-thresh", "0")
    page.fill("#object-name", "thing")
    page.click("#everything")
    page.wait_for_selector("#everything-list li button")
    rows = page.locator("#everything-list li.result")
    assert rows.count() >= 1
    rows.nth(0).locator("button").click()
    page.wait_for_function("document.querySelectorAll('#objects li').length === 1")
    kept = _objects(server, image_id)
    assert [o["name"] for o in kept] == ["thing"]
    assert kept[0]["mask_id"] == rows.nth(0).get_attribute("data-mask-id")
    assert rows.nth(0).locator("button").inner_text() == "kept"


def test_the_erased_photo_is_previewed_on_the_image(page, truck_path: Path) -> None:
    open_file(page, truck_path)
    click_object(page)
    page.click("#erase-preview")
    page.wait_for_selector("#preview:not([hidden])")
    assert page.get_attribute("#stage", "data-preview") == "erase"
    assert page.evaluate("document.getElementById('preview').naturalWidth") == 1800
    assert "learned inpainter" in page.inner_text("#panel")
    page.keyboard.press("Escape")
    assert page.locator("#preview").is_hidden()


@pytest.mark.parametrize("key", ["ArrowRight"])
def test_open_tabs_are_stepped_through_with_the_arrow_keys(
    page, truck_path: Path, tmp_path: Path, key: str
) -> None:
    first = open_file(page, truck_path)
    small = tmp_path / "b.png"
    Image.new("RGB", (50, 40), (0, 200, 0)).save(small)
    second = open_file(page, small)
    page.keyboard.press("ArrowLeft")
    page.wait_for_selector(f"#stage[data-image-id='{first}']")
    page.keyboard.press(key)
    page.wait_for_selector(f"#stage[data-image-id='{second}']")


# ---------------------------------------------------------------------------- folder
@pytest.fixture(scope="module")
def folder_server(tmp_path_factory, truck_path: Path):
    from helpers.web import serve

    tmp = tmp_path_factory.mktemp("folder")
    photos = tmp / "photos"
    photos.mkdir()
    shutil.copy(truck_path, photos / "01.jpg")
    for index, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)], start=2):
        Image.new("RGB", (160, 120), colour).save(photos / f"{index:02d}.png")
    for url in serve(["--model", "test-tiny", "--folder", str(photos)], tmp):
        yield url, photos


def test_a_folder_is_labelled_with_next_and_previous(browser, folder_server) -> None:
    url, photos = folder_server
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.goto(url)
    page.wait_for_selector("#folder-section:not([hidden])")
    assert page.locator("#folder-list li").all_inner_texts()[0].startswith("01.jpg")
    page.wait_for_selector("#stage[data-ready='1']", timeout=60_000)  # the first image opens
    assert page.inner_text("#folder-list li.active .name") == "01.jpg"
    click_object(page)
    _keep(page, "cat")
    for name in ("02.png", "03.png", "04.png"):
        page.keyboard.press("ArrowRight")
        page.wait_for_function(
            f"document.querySelector('#folder-list li.active .name')?.textContent === '{name}'"
        )
        page.wait_for_selector("#stage[data-ready='1']", timeout=60_000)
    assert page.locator("#tabs .tab").count() == 3  # older folder images close, losslessly
    for _ in range(3):
        page.keyboard.press("ArrowLeft")
    page.wait_for_function(
        "document.querySelector('#folder-list li.active .name')?.textContent === '01.jpg'"
    )
    page.wait_for_selector("#objects li", timeout=60_000)  # the object came back
    assert page.locator("#objects li input").input_value() == "cat"
    assert page.inner_text("#folder-list li:nth-child(1) .count") == "1"
    assert not (photos / "labels.json").exists()  # written only when asked
    page.fill("#folder-coco-path", "labels.json")
    page.click("#folder-coco")
    page.wait_for_selector("#toasts .toast.info")
    assert "labels.json" in toasts(page)[-1]
    written = (photos / "labels.json").read_text()
    assert '"cat"' in written and '"01.jpg"' in written
    page.close()
