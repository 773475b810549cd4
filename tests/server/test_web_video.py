"""The video mode in a real browser on a real ``tijeras serve``: open a clip, hover and click
on frame 0, track, scrub to a later frame and see its overlay, correct there, download the
overlay MP4 (decoded with OpenCV: every frame there) and the masks; a file that is not a video
is refused with a message and changes nothing; ← / → step frames, not images.

The server tracks with the tiny random SAM 2 (objects present), so the masks' shapes are
arbitrary; what is checked is what the page shows and does.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest
from helpers.video import folder_clip, present_checkpoint, square_clip
from helpers.web import count_painted, get_json, serve, toasts

FRAMES = 8


@pytest.fixture(scope="module")
def video_server(tmp_path_factory, truck_path: Path) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("video-server")
    checkpoint = present_checkpoint(tmp / "sam2-present.pt")
    args = ["--model", "test-tiny", "--samples", str(truck_path.parent)]
    args += ["--video-model", "sam2-test-tiny", "--video-checkpoint", str(checkpoint)]
    yield from serve(args, tmp)


@pytest.fixture()
def vpage(browser, video_server: str):
    context = browser.new_context(viewport={"width": 1366, "height": 768}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(video_server)
    page.wait_for_selector("#model-badge:has-text('test-tiny')")
    yield page
    context.close()
    assert errors == [], errors


def frame_point(page, fx: float, fy: float) -> tuple[float, float]:
    box = page.locator("#video-frame").bounding_box()
    return box["x"] + fx * box["width"], box["y"] + fy * box["height"]


def open_video(page, path: Path) -> str:
    page.set_input_files("#video-input", str(path))
    page.wait_for_selector("#video-stage[data-video-id]", timeout=60_000)
    page.wait_for_function("document.getElementById('video-frame').naturalWidth > 0")
    return page.get_attribute("#video-stage", "data-video-id")


def test_open_click_track_scrub_correct_download(vpage, video_server: str, tmp_path: Path):
    page = vpage
    clip = tmp_path / "square.mp4"
    square_clip(clip, FRAMES)
    video_id = open_video(page, clip)
    assert page.is_visible("#video-view") and not page.is_visible("#stage-wrap")
    assert page.input_value("#video-scrubber") == "0"
    assert "of 8" in page.inner_text("#video-frame-count")

    page.mouse.move(*frame_point(page, 0.3, 0.45))  # hover previews on the frame shown
    page.wait_for_selector("#video-stage[data-hover]", timeout=30_000)
    page.mouse.click(*frame_point(page, 25 / 128, 45 / 96))
    page.wait_for_selector("#video-stage[data-masks='1'][data-mask-frame='0']", timeout=30_000)
    assert count_painted(page, "video-masks") > 0
    assert page.locator("#video-marks circle.fg").count() == 1

    page.click("#video-track")
    page.wait_for_selector("#video-view[data-track='done']", timeout=120_000)
    assert "Tracked 8 / 8 frames" in page.inner_text("#video-track-note")

    page.focus("#video-scrubber")
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    page.wait_for_selector("#video-stage[data-frame='5'][data-mask-frame='5'][data-masks='1']")
    assert page.input_value("#video-frame-number") == "5"
    assert count_painted(page, "video-masks") > 0
    assert page.locator("#video-marks circle").count() == 0  # frame 5 has no prompt yet

    page.click("#video-frame", button="right", position={"x": 20, "y": 20})  # correct here
    page.wait_for_selector("#video-marks circle.bg")
    page.wait_for_function(
        "document.getElementById('video-object').textContent.includes('frames 0, 5')"
    )
    page.click("#video-track")
    page.wait_for_selector("#video-view[data-track='done']", timeout=120_000)

    with page.expect_download() as got:
        page.click("#video-dl-overlay")
    download = got.value
    assert download.suggested_filename == "square-overlay.mp4"
    saved = tmp_path / "overlay.mp4"
    download.save_as(saved)
    capture = cv2.VideoCapture(str(saved))
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert frames == FRAMES

    with page.expect_download() as got:
        page.click("#video-dl-png")
    archive = zipfile.ZipFile(io.BytesIO(Path(got.value.path()).read_bytes()))
    assert len(archive.namelist()) == FRAMES
    with page.expect_download() as got:
        page.click("#video-dl-json")
    masklets = json.loads(Path(got.value.path()).read_text())
    assert masklets["masklet_frame_index"] == list(range(FRAMES))
    assert got.value.suggested_filename == "square-masks.json"

    with page.expect_response(
        lambda r: r.request.method == "DELETE" and r.url.endswith(f"/api/videos/{video_id}")
    ):
        page.click("#video-close")  # the view hides before the server answers
    page.wait_for_selector("#video-view", state="hidden")
    assert get_json(f"{video_server}/api/info")["video"]["max_videos"] == 2
    assert page.evaluate(f"fetch('/api/videos/{video_id}').then(r => r.status)") == 404


def test_a_file_that_is_not_a_video_changes_nothing(vpage, tmp_path: Path, truck_path: Path):
    page = vpage
    page.set_input_files("#file-input", str(truck_path))  # an image with its tab
    page.wait_for_selector("#stage[data-ready='1']", timeout=60_000)
    clip = tmp_path / "square.mp4"
    square_clip(clip, FRAMES)
    video_id = open_video(page, clip)
    fake = tmp_path / "holiday.mp4"
    fake.write_bytes(b"this is not a video" * 100)
    page.set_input_files("#video-input", str(fake))
    page.wait_for_function("document.querySelectorAll('#toasts .toast').length > 0")
    assert any("'holiday.mp4' is not a video" in t for t in toasts(page))
    assert page.get_attribute("#video-stage", "data-video-id") == video_id
    assert page.locator("#tabs .tab").count() == 1

    page.keyboard.press("o")  # a new object, boxed
    page.keyboard.press("b")
    page.mouse.move(*frame_point(page, 0.45, 0.1))
    page.mouse.down()
    page.mouse.move(*frame_point(page, 0.95, 0.45), steps=5)
    page.mouse.up()
    page.wait_for_selector("#video-stage[data-masks='1'][data-mask-frame='0']", timeout=30_000)
    assert page.locator("#video-marks rect").count() == 1
    assert page.input_value("#video-object") == "2"
    page.wait_for_function(
        "document.getElementById('video-object').textContent.includes('2 (frames 0)')"
    )

    page.keyboard.press("End")  # keys step frames in the video mode
    page.wait_for_selector(f"#video-stage[data-frame='{FRAMES - 1}']")
    page.keyboard.press("ArrowLeft")
    page.wait_for_selector(f"#video-stage[data-frame='{FRAMES - 2}']")
    page.click("#video-view-toggle")  # back to the image, which kept its tab
    assert page.is_visible("#stage") and not page.is_visible("#video-view")
    page.click("#video-view-toggle")
    assert page.is_visible("#video-view")
    page.click("#video-close")


def test_the_bedroom_clip(vpage, tmp_path: Path, clip_frames: Path):
    """The first 8 frames of the development clip (960 x 540): open, click, track, scrub."""
    page = vpage
    clip = tmp_path / "bedroom.mp4"
    folder_clip(clip_frames, clip, FRAMES)
    open_video(page, clip)
    page.mouse.click(*frame_point(page, 0.22, 0.65))
    page.wait_for_selector("#video-stage[data-masks='1']", timeout=60_000)
    page.click("#video-track")
    page.wait_for_selector("#video-view[data-track='done']", timeout=300_000)
    page.fill("#video-frame-number", "7")
    page.press("#video-frame-number", "Enter")
    page.wait_for_selector("#video-stage[data-mask-frame='7'][data-masks='1']")
    page.click("#video-close")


@pytest.fixture(scope="module")
def clip_frames() -> Path:
    from helpers.data import data_path

    return data_path("sam2_bedroom_clip", "frames")
