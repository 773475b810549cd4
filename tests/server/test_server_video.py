"""The video API: upload, frames, prompts, hover, tracking with progress, corrections, files,
limits and errors, on a synthetic clip (a bright square moving over a dark background) and the
tiny random SAM 2 whose object-score head is shifted so objects are present.

The weights are random, so the masks' shapes mean nothing; what is checked is structure, round
trips (RLEs, files) and parity: the server's masks are those of ``VideoTracker`` driven
directly with the same prompts.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from helpers.server import tiny_backend
from helpers.video import SQUARE_SIZE, present_model, square_clip, square_frame
from PIL import Image
from pycocotools import mask as mask_utils

from tijeras.server.app import create_app
from tijeras.server.settings import ServerSettings

FRAMES, (H, W) = 8, SQUARE_SIZE


def make_clip(
    folder: Path, frames: int = FRAMES, fps: float = 10.0, name: str = "clip.mp4"
) -> bytes:
    return square_clip(folder / name, frames, fps)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tiny model on one thread: its operations are too small to share, and on a busy
    machine every parallel region would wait for a second core (20 times slower here)."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture(scope="module")
def model():
    return present_model()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> bytes:
    return make_clip(tmp_path_factory.mktemp("clip"))


def video_client(model, **settings) -> TestClient:
    app = create_app(ServerSettings(**settings), backend=tiny_backend(), video_model=model)
    return TestClient(app)


def upload_video(c: TestClient, data: bytes, name: str = "clip.mp4"):
    return c.post("/api/videos", content=data, headers={"X-Filename": name})


def wait_tracked(c: TestClient, video_id: str, timeout: float = 120.0) -> tuple[dict, list[dict]]:
    """The final tracking state and every distinct progress report seen on the way."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = c.get(f"/api/videos/{video_id}/track").json()
        if not seen or seen[-1] != job:
            seen.append(job)
        if job["status"] in ("done", "failed", "stopped"):
            return job, seen
        time.sleep(0.02)
    raise AssertionError("tracking did not finish")


def decode(rle: dict) -> np.ndarray:
    return mask_utils.decode({**rle, "counts": rle["counts"].encode()}).astype(bool)


def direct_masks(model, data: bytes, steps: list) -> list[dict]:
    """What ``VideoTracker`` gives after each of ``steps``: prompts ``(frame, obj, points,
    labels)`` and ``"track"`` (a forward propagation); per frame, per object, a mask."""
    from tijeras.models.sam2.video_config import tracking_config
    from tijeras.video.frames import VideoFile
    from tijeras.video.tracker import VideoTracker

    tracker = VideoTracker(model, tracking_config(model.config))
    state = tracker.init_state(VideoFile.from_bytes(data))
    out: dict = {}
    after = []
    for step in steps:
        if step == "track":
            for result in tracker.propagate(state):
                out[result.frame_idx] = dict(zip(result.obj_ids, result.masks()))
        else:
            frame, obj, points, labels = step
            result = tracker.add_points(state, frame, obj, points, labels)
            out[frame] = dict(zip(result.obj_ids, result.masks()))
        after.append(dict(out))
    return after


def test_upload_prompt_track_and_files(model, clip: bytes) -> None:
    with video_client(model) as c:
        info = c.get("/api/info").json()["video"]
        assert info["model"] == "sam2-test-tiny" and info["max_frames"] == 600
        answer = upload_video(c, clip, "my clip.mp4")
        assert answer.status_code == 201, answer.text
        v = answer.json()
        assert (v["num_frames"], v["width"], v["height"], v["fps"]) == (FRAMES, W, H, 10.0)
        base = f"/api/videos/{v['id']}"

        jpeg = c.get(f"{base}/frames/3.jpg")
        assert jpeg.headers["content-type"] == "image/jpeg"
        shown = np.asarray(Image.open(io.BytesIO(jpeg.content)).convert("RGB")).astype(int)
        assert np.abs(shown - square_frame(3)).mean() < 6  # the frame asked for, not another

        first = c.post(
            f"{base}/prompts", json={"frame": 0, "object": 1, "points": [[25, 45]], "labels": [1]}
        )
        assert first.status_code == 200, first.text
        objects = first.json()["objects"]
        assert [o["id"] for o in objects] == [1] and first.json()["prompted"] == [1]
        assert objects[0]["rle"]["size"] == [H, W] and decode(objects[0]["rle"]).any()
        second = c.post(f"{base}/prompts", json={"frame": 0, "object": 2, "box": [60, 10, 120, 40]})
        assert [o["id"] for o in second.json()["objects"]] == [1, 2]

        with c.websocket_connect(f"{base}/hover") as ws:
            ws.send_text(json.dumps({"seq": 4, "frame": 5, "x": 60, "y": 45}))
            hovered = ws.receive_json()
            assert (
                hovered["seq"] == 4 and hovered["frame"] == 5 and hovered["rle"]["size"] == [H, W]
            )
            ws.send_text(json.dumps({"seq": 5, "frame": 5, "x": 999, "y": 45}))
            assert "outside frame 5" in ws.receive_json()["error"]
        assert c.get(f"{base}/frames/5/masks").json()["objects"] == []  # hover changes nothing

        started = c.post(f"{base}/track", json={})
        assert started.status_code == 202 and started.json()["total"] == FRAMES
        job, seen = wait_tracked(c, v["id"])
        assert job["status"] == "done" and job["done"] == FRAMES and job["fps"] > 0, job
        assert [s["done"] for s in seen] == sorted(s["done"] for s in seen)  # progress grows

        for frame in range(FRAMES):
            objects = c.get(f"{base}/frames/{frame}/masks").json()["objects"]
            assert [o["id"] for o in objects] == [1, 2]
        status = c.get(base).json()
        assert status["masked_frames"] == FRAMES
        assert status["objects"] == [
            {"id": 1, "colour": status["objects"][0]["colour"], "frames": [0]},
            {"id": 2, "colour": status["objects"][1]["colour"], "frames": [0]},
        ]

        overlay = c.get(f"{base}/overlay.mp4")
        assert overlay.status_code == 200
        assert overlay.headers["content-disposition"].startswith(
            'attachment; filename="my-clip-overlay.mp4"'
        )
        cap = cv2.VideoCapture(io.BytesIO(overlay.content), cv2.CAP_FFMPEG, [])
        drawn = []
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            drawn.append(bgr[:, :, ::-1].astype(int))
        assert len(drawn) == FRAMES
        covered = got_mask(c, base, 4, 1) | got_mask(c, base, 4, 2)
        near = cv2.dilate(covered.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0  # outlines
        change = np.abs(drawn[4] - square_frame(4)).sum(axis=2)
        assert change[covered].mean() > 4 * change[~near].mean()  # drawn where masked only

        sav = json.loads(c.get(f"{base}/masks.json").content)
        assert sav["video_id"] == "my-clip" and sav["masklet_id"] == [1, 2]
        assert sav["masklet_frame_index"] == list(range(FRAMES)) and len(sav["masklet"]) == FRAMES
        assert np.array_equal(decode(sav["masklet"][4][0]), got_mask(c, base, 4, 1))

        archive = zipfile.ZipFile(io.BytesIO(c.get(f"{base}/masks.zip").content))
        names = archive.namelist()
        assert names == [f"my-clip/{i:05d}.png" for i in range(FRAMES)]
        labels = np.asarray(Image.open(io.BytesIO(archive.read(names[4]))))
        assert np.array_equal(labels == 1, got_mask(c, base, 4, 1))  # label 1 wins overlaps

        assert c.delete(base).status_code == 200
        assert c.get(base).status_code == 404
        assert len(c.app.state.videos) == 0


def got_mask(c: TestClient, base: str, frame: int, obj: int) -> np.ndarray:
    objects = c.get(f"{base}/frames/{frame}/masks").json()["objects"]
    return decode(next(o["rle"] for o in objects if o["id"] == obj))


def test_server_masks_equal_the_trackers_through_a_correction(model, clip: bytes) -> None:
    first = (0, 1, [[25, 45]], [1])
    correction = (4, 1, [[50, 45], [60, 40]], [1, 0])
    _, tracked, corrected, retracked = direct_masks(
        model, clip, [first, "track", correction, "track"]
    )
    with video_client(model) as c:
        vid = upload_video(c, clip).json()["id"]
        base = f"/api/videos/{vid}"

        def send(step) -> dict:
            frame, obj, points, labels = step
            body = {"frame": frame, "object": obj, "points": points, "labels": labels}
            return c.post(f"{base}/prompts", json=body).json()

        send(first)
        c.post(f"{base}/track", json={})
        assert wait_tracked(c, vid)[0]["status"] == "done"
        for frame in range(FRAMES):
            assert np.array_equal(got_mask(c, base, frame, 1), tracked[frame][1]), frame
        answer = send(correction)
        assert answer["prompted"] == [1]
        assert np.array_equal(decode(answer["objects"][0]["rle"]), corrected[4][1])
        c.post(f"{base}/track", json={})
        assert wait_tracked(c, vid)[0]["status"] == "done"
        for frame in range(FRAMES):
            assert np.array_equal(got_mask(c, base, frame, 1), retracked[frame][1]), frame
        assert c.get(base).json()["objects"][0]["frames"] == [0, 4]

        c.post(f"{base}/track", json={"reverse": True})
        job = wait_tracked(c, vid)[0]
        assert job["status"] == "done" and job["total"] == 5 and job["start"] == 4

        c.post(f"{base}/prompts", json={"frame": 2, "object": 2, "box": [60, 10, 120, 40]})
        cleared = c.post(f"{base}/prompts", json={"frame": 4, "object": 1})
        assert cleared.status_code == 200 and cleared.json()["prompted"] == []
        c.post(f"{base}/prompts", json={"frame": 0, "object": 1})  # its last prompt
        refused = c.post(f"{base}/track", json={})
        assert refused.status_code == 422 and "object 1 has no prompt" in refused.json()["detail"]
        assert c.delete(f"{base}/objects/1").status_code == 200
        assert [o["id"] for o in c.get(f"{base}/frames/2/masks").json()["objects"]] == [2]
        assert c.get(f"{base}/frames/3/masks").json()["objects"] == []
        assert c.delete(f"{base}/objects/2").status_code == 200
        assert c.post(f"{base}/track", json={}).status_code == 422  # nothing to track


def test_stopping_a_tracking_keeps_the_frames_done(model, tmp_path: Path) -> None:
    data = make_clip(tmp_path, frames=24)
    with video_client(model) as c:
        vid = upload_video(c, data).json()["id"]
        base = f"/api/videos/{vid}"
        c.post(
            f"{base}/prompts", json={"frame": 0, "object": 1, "points": [[25, 45]], "labels": [1]}
        )
        c.post(f"{base}/track", json={})
        while c.get(f"{base}/track").json()["done"] < 2:
            time.sleep(0.01)
        busy = c.post(
            f"{base}/prompts", json={"frame": 0, "object": 1, "points": [[5, 5]], "labels": [1]}
        )
        assert busy.status_code in (200, 409)  # 409 while it runs, naming the tracking
        if busy.status_code == 409:
            assert "being tracked" in busy.json()["detail"]
        c.delete(f"{base}/track")
        job = wait_tracked(c, vid)[0]
        assert job["status"] in ("stopped", "done")
        assert c.get(base).json()["masked_frames"] == max(job["done"], 1)


def test_bad_uploads_and_requests_change_nothing(model, clip: bytes, tmp_path: Path) -> None:
    with video_client(model, max_videos=1, max_video_frames=6) as c:
        refused = upload_video(c, b"this is not a video at all" * 50, "notes.mp4")
        assert (
            refused.status_code == 415 and "'notes.mp4' is not a video" in refused.json()["detail"]
        )
        too_long = upload_video(c, clip)
        assert too_long.status_code == 413
        assert "8 frames; the limit is 6 (--max-video-frames)" in too_long.json()["detail"]
        short = make_clip(tmp_path, frames=4, name="short.mp4")
        assert upload_video(c, b"").status_code == 400
        vid = upload_video(c, short).json()["id"]
        full = upload_video(c, short)
        assert full.status_code == 409 and "--max-videos 1" in full.json()["detail"]
        base = f"/api/videos/{vid}"
        out_of_range = c.post(
            f"{base}/prompts", json={"frame": 9, "points": [[5, 5]], "labels": [1]}
        )
        assert out_of_range.status_code == 422
        assert "frame 9 is out of range" in out_of_range.json()["detail"]
        outside = c.post(f"{base}/prompts", json={"frame": 0, "points": [[500, 5]], "labels": [1]})
        assert outside.status_code == 422 and "outside frame 0" in outside.json()["detail"]
        unpaired = c.post(f"{base}/prompts", json={"frame": 0, "points": [[5, 5]]})
        assert unpaired.status_code == 422
        assert c.get(f"{base}/frames/4.jpg").status_code == 422
        assert c.get(f"{base}/frames/-1/masks").status_code == 422
        assert c.get("/api/videos/nope/frames/0.jpg").status_code == 404
        assert c.delete(f"{base}/objects/3").status_code == 422
        c.app.state.settings.max_video_objects = 1
        box = {"frame": 0, "box": [10, 10, 40, 40]}
        assert c.post(f"{base}/prompts", json={**box, "object": 7}).status_code == 200
        again = c.post(f"{base}/prompts", json={**box, "object": 7, "box": [5, 5, 30, 30]})
        assert again.status_code == 200
        second = c.post(f"{base}/prompts", json={**box, "object": 8})
        assert second.status_code == 422 and "max_video_objects 1" in second.json()["detail"]
        assert c.delete(f"{base}/objects/7").status_code == 200
        assert c.post(f"{base}/track", json={}).status_code == 422
        assert c.get(base).json()["objects"] == []
    with video_client(model, max_video_mb=0.001) as c:
        big = upload_video(c, clip)
        assert big.status_code == 413 and "the limit is 1048" in big.json()["detail"]
    with video_client(model, max_video_seconds=0.5) as c:
        long = upload_video(c, clip)
        assert (
            long.status_code == 413 and "lasts 0.8 s; the limit is 0.5 s" in long.json()["detail"]
        )


def test_no_sam2_weights_is_a_clear_503(clip: bytes, tmp_path: Path) -> None:
    settings = ServerSettings(download=False, cache=str(tmp_path / "cache"))
    with TestClient(create_app(settings, backend=tiny_backend())) as c:
        answer = upload_video(c, clip)
        assert answer.status_code == 503
        assert "tijeras download sam2.1-hiera-tiny" in answer.json()["detail"]
        assert len(c.app.state.videos) == 0


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def _jpeg(frame: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(frame).save(out, format="JPEG", quality=95)
    return out.getvalue()


def test_a_zip_of_jpeg_frames_opens_as_a_video(model) -> None:
    # names out of order, a folder inside, and a file that is not a frame
    files = {f"clip/{i}.jpg": _jpeg(square_frame(i)) for i in (3, 0, 10, 1, 2)}
    files["clip/notes.txt"] = b"not a frame"
    with video_client(model) as c:
        answer = upload_video(c, _zip(files), "frames.zip")
        assert answer.status_code == 201, answer.text
        v = answer.json()
        assert (v["num_frames"], v["width"], v["height"], v["fps"]) == (5, W, H, 0.0)
        base = f"/api/videos/{v['id']}"
        shown = Image.open(io.BytesIO(c.get(f"{base}/frames/4.jpg").content)).convert("RGB")
        assert np.abs(np.asarray(shown).astype(int) - square_frame(10)).mean() < 6  # 10.jpg last
        prompt = {"frame": 0, "object": 1, "points": [[25, 45]], "labels": [1]}
        assert c.post(f"{base}/prompts", json=prompt).status_code == 200
        c.post(f"{base}/track", json={})
        assert wait_tracked(c, v["id"])[0]["status"] == "done"
        cap = cv2.VideoCapture(io.BytesIO(c.get(f"{base}/overlay.mp4").content), cv2.CAP_FFMPEG, [])
        assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 5
        c.delete(base)

        empty = upload_video(c, _zip({"readme.txt": b"hello"}), "empty.zip")
        assert empty.status_code == 415 and "holds no JPEG" in empty.json()["detail"]
    with video_client(model, max_video_pixels=64 * 64) as c:
        large = upload_video(c, _zip({"0.jpg": _jpeg(square_frame(0))}), "large.zip")
        assert large.status_code == 413 and "the limit is 4096" in large.json()["detail"]


def test_an_opencv_reading_files_only_goes_through_ram(model, clip: bytes, monkeypatch) -> None:
    """OpenCV before 4.11 cannot read from memory: the bytes pass through the RAM file system,
    and are gone once the capture has them."""
    from tijeras.server.video import scratch_folder
    from tijeras.video.frames import VideoFile

    def files_only(cls, *args, **kwargs):
        raise NotImplementedError("OpenCV 4.8 reads videos from files only")

    monkeypatch.setattr(VideoFile, "from_bytes", classmethod(files_only))
    ram = Path(scratch_folder())
    before = set(ram.glob("tijeras-*"))
    with video_client(model) as c:
        answer = upload_video(c, clip)
        assert answer.status_code == 201 and answer.json()["num_frames"] == FRAMES
        assert c.get(f"/api/videos/{answer.json()['id']}/frames/7.jpg").status_code == 200
        assert set(ram.glob("tijeras-*")) == before
        refused = upload_video(c, b"not a video" * 100, "notes.mp4")
        assert (
            refused.status_code == 415 and "'notes.mp4' is not a video" in refused.json()["detail"]
        )
        assert set(ram.glob("tijeras-*")) == before
