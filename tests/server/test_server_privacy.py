"""A whole visit to the web app writes nothing to disk.

Two independent checks over one visit (upload, prompts, hover, everything, downloads, objects,
delete): a Python audit hook records every file opened for writing, every folder created and
every temporary file made anywhere; and the temporary folder, the working folder and the
weights cache are listed before and after.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from helpers.server import client, upload, wait_everything, wait_ready

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_RECORDING: list[tuple[str, str]] | None = None


def _audit(event: str, args: tuple) -> None:
    if _RECORDING is None:
        return
    if event == "open":
        path, mode, flags = (list(args) + [None, None])[:3]
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & _WRITE_FLAGS
        )
        if writes and isinstance(path, (str, bytes, os.PathLike)):
            _RECORDING.append((event, os.fsdecode(path)))
    elif event in ("os.mkdir", "os.rename", "os.link", "os.symlink", "tempfile.mkstemp"):
        _RECORDING.append((event, repr(args[0]) if args else ""))
    elif event == "tempfile.mkdtemp":
        _RECORDING.append((event, repr(args)))


sys.addaudithook(_audit)


def _listing(folders: list[Path]) -> set[str]:
    found = set()
    for folder in folders:
        if folder.is_dir():
            for root, dirs, files in os.walk(folder):
                found.update(os.path.join(root, name) for name in dirs + files)
    return found


def _visit(c, data: bytes) -> None:
    image_id = upload(c, data, "truck.jpg")["id"]
    base = f"/api/images/{image_id}"
    masks = c.post(f"{base}/segment", json={"points": [[500, 375]], "labels": [1]}).json()
    best = masks["masks"][0]["id"]
    c.post(f"{base}/segment", json={"box": [50, 50, 900, 700], "mask_input": best})
    with c.websocket_connect(f"{base}/hover") as ws:
        ws.send_text(json.dumps({"seq": 1, "x": 300, "y": 300}))
        assert ws.receive_json()["seq"] == 1
    c.post(f"{base}/everything", json={"points_per_side": 4})
    assert wait_everything(c, image_id)["status"] == "done"
    kept = c.post(f"{base}/objects", json={"mask_id": best, "name": "truck"}).json()
    c.patch(f"{base}/objects/{kept['id']}", json={"name": "lorry"})
    c.delete(f"{base}/objects/{kept['id']}")
    c.post(f"{base}/objects", json={"mask_id": best, "name": "lorry", "id": kept["id"]})
    stroke = {"mode": "add", "radius": 20, "points": [[100, 100], [300, 200]]}
    edited = c.post(f"{base}/masks/{best}/edit", json={"strokes": [stroke]}).json()["id"]
    for path in (
        "cutout.png",
        "mask.png",
        "inpaint.png?dilate=4",
        "erase.jpg?dilate=4",
        "erase.png",
        "sticker.webp?outline=8",
    ):
        assert c.get(f"{base}/masks/{best}/{path}").status_code == 200
        assert c.get(f"{base}/masks/{edited}/{path}").status_code == 200
    assert c.get(f"{base}/coco.json").status_code == 200
    assert c.get(f"{base}/coco.json?segmentation=polygon").status_code == 200
    assert c.delete(base).status_code == 200
    assert c.get(base).status_code == 404


def test_a_whole_visit_creates_no_file(truck_path: Path, tmp_path: Path, monkeypatch) -> None:
    global _RECORDING
    data = truck_path.read_bytes()
    temp = tmp_path / "tmp"
    cache = tmp_path / "cache"
    work = tmp_path / "work"
    for folder in (temp, cache, work):
        folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setenv("TIJERAS_CACHE", str(cache))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.chdir(work)
    watched = [temp, cache, work, Path(tempfile.gettempdir())]
    with client(cache=str(cache)) as c:
        before = _listing(watched)
        _RECORDING = []
        try:
            _visit(c, data)
            events = list(_RECORDING)
        finally:
            _RECORDING = None
        after = _listing(watched)
    assert after == before, f"files appeared: {sorted(after - before)}"
    assert events == [], f"the visit wrote to disk: {events}"


def test_a_folder_visit_writes_only_the_coco_file_asked_for(
    truck_path: Path, tmp_path: Path, monkeypatch
) -> None:
    global _RECORDING
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "truck.jpg").write_bytes(truck_path.read_bytes())
    monkeypatch.setenv("TIJERAS_CACHE", str(tmp_path / "cache"))
    with client(folder=str(folder)) as c:
        before = _listing([tmp_path])
        _RECORDING = []
        try:
            opened = c.post("/api/folder/open", json={"name": "truck.jpg"}).json()
            image_id = wait_ready(c, opened["id"])["id"]
            base = f"/api/images/{image_id}"
            masks = c.post(f"{base}/segment", json={"points": [[500, 375]], "labels": [1]}).json()
            c.post(f"{base}/objects", json={"mask_id": masks["masks"][0]["id"], "name": "truck"})
            c.delete(base)
            c.get("/api/folder")
            unasked = list(_RECORDING)
            written = c.post("/api/folder/coco", json={"path": "labels.json"}).json()
            events = list(_RECORDING)
        finally:
            _RECORDING = None
        after = _listing([tmp_path])
    assert unasked == [], f"the visit wrote before being asked: {unasked}"
    assert after - before == {str(folder / "labels.json")}
    assert written["annotations"] == 1
    assert {path.strip("'") for _, path in events} <= {  # rename events hold a repr
        str(folder / "labels.json"),
        str(folder / ".labels.json.partial"),
    }


def _video_visit(c, data: bytes) -> None:
    import time

    answer = c.post("/api/videos", content=data, headers={"X-Filename": "clip.mp4"})
    assert answer.status_code == 201, answer.text
    base = f"/api/videos/{answer.json()['id']}"
    assert c.get(f"{base}/frames/3.jpg").status_code == 200
    prompt = {"frame": 0, "object": 1, "points": [[25, 45]], "labels": [1]}
    assert c.post(f"{base}/prompts", json=prompt).status_code == 200
    c.post(f"{base}/prompts", json={"frame": 2, "object": 2, "box": [60, 10, 120, 40]})
    with c.websocket_connect(f"{base}/hover") as ws:
        ws.send_text(json.dumps({"seq": 1, "frame": 4, "x": 60, "y": 40}))
        assert ws.receive_json()["seq"] == 1
    assert c.post(f"{base}/track", json={}).status_code == 202
    deadline = time.monotonic() + 120
    while c.get(f"{base}/track").json()["status"] != "done":
        assert time.monotonic() < deadline, "tracking did not finish"
        time.sleep(0.02)
    c.post(f"{base}/prompts", json={**prompt, "frame": 5})
    c.post(f"{base}/track", json={"reverse": True})
    while c.get(f"{base}/track").json()["status"] != "done":
        time.sleep(0.02)
    assert c.get(f"{base}/frames/6/masks").status_code == 200
    for path in ("overlay.mp4", "masks.json", "masks.zip"):
        assert c.get(f"{base}/{path}").status_code == 200
    assert c.delete(f"{base}/objects/2").status_code == 200
    assert c.delete(base).status_code == 200


def _ram_files(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("tijeras-*")} if folder.is_dir() else set()


def test_a_video_visit_writes_only_to_memory(tmp_path: Path, monkeypatch) -> None:
    """The video is decoded from memory; only OpenCV's MP4 encoder needs a path, given in the
    RAM file system (``/dev/shm``, a tmpfs) and removed before the download is answered."""
    global _RECORDING
    import torch
    from fastapi.testclient import TestClient
    from helpers.server import tiny_backend
    from helpers.video import present_model, square_clip

    from tijeras.server.app import create_app
    from tijeras.server.settings import ServerSettings
    from tijeras.server.video import scratch_folder

    data = square_clip(tmp_path / "clip.mp4")
    model = present_model()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny model: one thread is faster on a busy machine
    temp, cache, work = tmp_path / "tmp", tmp_path / "cache", tmp_path / "work"
    for folder in (temp, cache, work):
        folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setenv("TIJERAS_CACHE", str(cache))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.chdir(work)
    ram = Path(scratch_folder())
    assert ram == Path("/dev/shm"), "this check needs a Linux RAM file system at /dev/shm"
    mounts = Path("/proc/mounts").read_text().split("\n")
    assert any(m.split()[1:3] == ["/dev/shm", "tmpfs"] for m in mounts if m.strip())
    watched = [temp, cache, work, Path(tempfile.gettempdir())]
    app = create_app(ServerSettings(cache=str(cache)), backend=tiny_backend(), video_model=model)
    try:
        with TestClient(app) as c:
            before, ram_before = _listing(watched), _ram_files(ram)
            _RECORDING = []
            try:
                _video_visit(c, data)
                events = list(_RECORDING)
            finally:
                _RECORDING = None
            after, ram_after = _listing(watched), _ram_files(ram)
    finally:
        torch.set_num_threads(threads)
    assert after == before, f"files appeared: {sorted(after - before)}"
    assert ram_after == ram_before, f"left in {ram}: {sorted(ram_after - ram_before)}"
    paths = {path.strip("'") for _, path in events}  # mkdir and rename events hold a repr
    assert paths and all(p == str(ram) or p.startswith(f"{ram}/tijeras-") for p in paths), events


def test_the_audit_hook_sees_writes(tmp_path: Path) -> None:
    global _RECORDING
    _RECORDING = []
    try:
        (tmp_path / "x.txt").write_text("written")
        tempfile.mkstemp(dir=tmp_path)
        events = list(_RECORDING)
    finally:
        _RECORDING = None
    kinds = [kind for kind, _ in events]
    assert "open" in kinds and "tempfile.mkstemp" in kinds
