"""Checkpoint download: resume, integrity checks and errors, against a real local HTTP server."""

from __future__ import annotations

import hashlib
import io
import itertools
import re
import socket
import sys
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from tijeras.catalog import REGISTRY, build_model, get_spec, list_models
from tijeras.errors import DownloadError
from tijeras.hub.download import cache_dir, cached_checkpoint, download, model_table
from tijeras.hub.registry import CheckpointFile, ModelSpec
from tijeras.models.sam.config import SAM_TEST_TINY

# --------------------------------------------------------------------------- test server


class _ServerState:
    """What the test server serves and how it misbehaves; records every request."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.mode = "normal"  # normal | ignore_range | error500 | corrupt | stall
        self.cut_after: int | None = None  # send this many body bytes, then close (once)
        self.requests: list[dict] = []
        self.release = threading.Event()  # ends a "stall"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def _empty(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        state: _ServerState = self.server.state  # type: ignore[attr-defined]
        record = {"path": self.path, "range": self.headers.get("Range"), "status": 0, "sent": 0}
        state.requests.append(record)

        if state.mode == "error500":
            record["status"] = 500
            self._empty(500)
            return
        data = state.files.get(self.path)
        if data is None:
            record["status"] = 404
            self._empty(404)
            return
        if state.mode == "corrupt":
            middle = len(data) // 2
            data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]

        start, status = 0, 200
        requested = self.headers.get("Range")
        if requested and state.mode != "ignore_range":
            match = re.fullmatch(r"bytes=(\d+)-", requested.strip())
            assert match, requested
            start = int(match.group(1))
            if start >= len(data):
                record["status"] = 416
                self._empty(416, {"Content-Range": f"bytes */{len(data)}"})
                return
            status = 206
        body = data[start:]

        record["status"] = status
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")

        # Record before writing: the client may finish before this thread runs again.
        cut, state.cut_after = state.cut_after, None
        if cut is not None:
            body = body[:cut]
            self.close_connection = True
        if state.mode == "stall":
            record["sent"] = 1000
            self.end_headers()
            self.wfile.write(body[:1000])
            self.wfile.flush()
            state.release.wait(10)
            self.close_connection = True
            return
        record["sent"] = len(body)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    state = _ServerState()
    httpd.state = state  # type: ignore[attr-defined]
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


# --------------------------------------------------------------------------- test models

_counter = itertools.count()


@pytest.fixture
def make_model():
    """Register throwaway model specs with unique names; remove them afterwards."""
    names: list[str] = []

    def make(url: str, data: bytes, *, sha256: bool = True, size: int | None = -1) -> ModelSpec:
        n = next(_counter)
        name = f"download-test-{n}"
        ckpt = CheckpointFile(
            filename=f"download_test_{n}.pth",
            url=url,
            size=len(data) if size == -1 else size,
            sha256=hashlib.sha256(data).hexdigest() if sha256 else None,
        )
        REGISTRY.add(
            ModelSpec(
                name=name,
                family="sam",
                config=SAM_TEST_TINY,
                description="download test model",
                aliases=(f"download_test_alias_{n}",),
                checkpoint=ckpt,
            )
        )
        names.append(name)
        return get_spec(name)

    yield make
    for name in names:
        REGISTRY.remove(name)


@pytest.fixture(scope="module")
def tiny_checkpoint() -> bytes:
    """A real checkpoint of the registered ``test-tiny`` model, as bytes."""
    torch.manual_seed(0)
    buffer = io.BytesIO()
    torch.save(build_model("test-tiny").state_dict(), buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def blob() -> bytes:
    """Arbitrary bytes for the sha256-checked models (several read chunks long)."""
    return (
        torch.randint(0, 256, (2_500_000,), generator=torch.Generator().manual_seed(1))
        .to(torch.uint8)
        .numpy()
        .tobytes()
    )


def _serve(server: _ServerState, make_model, data: bytes, **kwargs) -> ModelSpec:
    n = len(server.files)
    path = f"/files/model_{n}.pth"
    server.files[path] = data
    return make_model(server.base + path, data, **kwargs)


def _part(cache: Path, spec: ModelSpec) -> Path:
    return cache / (spec.checkpoint.filename + ".part")


def _final(cache: Path, spec: ModelSpec) -> Path:
    return cache / spec.checkpoint.filename


def _patch_verify(monkeypatch, fake) -> None:
    """Replace ``verify_checkpoint`` whether or not the real module can be imported."""
    try:
        import tijeras.hub.checkpoint as module
    except ImportError:
        module = types.ModuleType("tijeras.hub.checkpoint")
        monkeypatch.setitem(sys.modules, "tijeras.hub.checkpoint", module)
    monkeypatch.setattr(module, "verify_checkpoint", fake, raising=False)


# --------------------------------------------------------------------------- good downloads


def test_download_sha256(server, make_model, blob, tmp_path):
    spec = _serve(server, make_model, blob)
    assert spec.checkpoint.check == "sha256"
    path = download(spec.name, tmp_path, progress=False)
    assert path == _final(tmp_path, spec)
    assert path.read_bytes() == blob
    assert not _part(tmp_path, spec).exists()
    assert [r["range"] for r in server.requests] == [None]
    assert cached_checkpoint(spec.name, tmp_path) == path


def test_download_size_and_load(server, make_model, tiny_checkpoint, tmp_path):
    spec = _serve(server, make_model, tiny_checkpoint, sha256=False)
    assert spec.checkpoint.check == "size+load"
    path = download(spec.aliases[0], tmp_path, progress=False)
    assert path.read_bytes() == tiny_checkpoint
    assert not _part(tmp_path, spec).exists()
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert set(state) == set(build_model("test-tiny").state_dict())


def test_size_and_load_calls_verify_checkpoint_on_the_part(
    server, make_model, blob, tmp_path, monkeypatch
):
    spec = _serve(server, make_model, blob, sha256=False)
    calls = []

    def fake(path, got_spec, registry):
        calls.append((Path(path), got_spec, Path(path).read_bytes() == blob))

    _patch_verify(monkeypatch, fake)
    path = download(spec.name, tmp_path, progress=False)
    assert calls == [(_part(tmp_path, spec), spec, True)]
    assert path.read_bytes() == blob


def test_progress_bar_goes_to_stderr(server, make_model, blob, tmp_path, capsys):
    spec = _serve(server, make_model, blob)
    download(spec.name, tmp_path, progress=True)
    captured = capsys.readouterr()
    assert spec.checkpoint.filename in captured.err
    assert captured.out == ""


# --------------------------------------------------------------------------- resume


@pytest.mark.parametrize("check", ["sha256", "size+load"])
def test_resume_from_part(server, make_model, tiny_checkpoint, tmp_path, check):
    spec = _serve(server, make_model, tiny_checkpoint, sha256=check == "sha256")
    assert spec.checkpoint.check == check
    have = len(tiny_checkpoint) // 3
    tmp_path.mkdir(exist_ok=True)
    _part(tmp_path, spec).write_bytes(tiny_checkpoint[:have])

    path = download(spec.name, tmp_path, progress=False)

    assert path.read_bytes() == tiny_checkpoint
    assert not _part(tmp_path, spec).exists()
    assert len(server.requests) == 1
    (request,) = server.requests
    assert request["range"] == f"bytes={have}-"
    assert request["status"] == 206
    assert request["sent"] == len(tiny_checkpoint) - have


def test_server_ignoring_range_restarts_from_zero(server, make_model, blob, tmp_path):
    spec = _serve(server, make_model, blob)
    server.mode = "ignore_range"
    have = 777_777
    _part(tmp_path, spec).write_bytes(b"\0" * have)  # even a wrong prefix is overwritten

    path = download(spec.name, tmp_path, progress=False)

    assert path.read_bytes() == blob
    (request,) = server.requests
    assert request["range"] == f"bytes={have}-"
    assert request["status"] == 200
    assert request["sent"] == len(blob)


def test_interrupted_transfer_keeps_part_and_resumes(server, make_model, blob, tmp_path):
    spec = _serve(server, make_model, blob)
    server.cut_after = 1_234_567

    with pytest.raises(DownloadError, match="resume"):
        download(spec.name, tmp_path, progress=False)
    assert _part(tmp_path, spec).read_bytes() == blob[:1_234_567]
    assert not _final(tmp_path, spec).exists()
    assert cached_checkpoint(spec.name, tmp_path) is None

    path = download(spec.name, tmp_path, progress=False)
    assert path.read_bytes() == blob
    assert not _part(tmp_path, spec).exists()
    assert [r["range"] for r in server.requests] == [None, "bytes=1234567-"]
    assert server.requests[1]["sent"] == len(blob) - 1_234_567


def test_range_not_satisfiable_restarts_cleanly(server, make_model, blob, tmp_path):
    # Without a known size the client cannot tell the part is too long; the server answers 416.
    spec = _serve(server, make_model, blob, size=None)
    _part(tmp_path, spec).write_bytes(b"x" * (len(blob) + 10))

    path = download(spec.name, tmp_path, progress=False)

    assert path.read_bytes() == blob
    assert [(r["range"], r["status"]) for r in server.requests] == [
        (f"bytes={len(blob) + 10}-", 416),
        (None, 200),
    ]


def test_complete_part_is_verified_without_network(server, make_model, blob, tmp_path):
    spec = _serve(server, make_model, blob)
    _part(tmp_path, spec).write_bytes(blob)
    path = download(spec.name, tmp_path, progress=False)
    assert path.read_bytes() == blob
    assert server.requests == []


# --------------------------------------------------------------------------- integrity failures


def test_corrupted_file_fails_sha256(server, make_model, blob, tmp_path):
    spec = _serve(server, make_model, blob)
    server.mode = "corrupt"
    corrupted = bytearray(blob)
    corrupted[len(blob) // 2] ^= 0xFF
    got = hashlib.sha256(corrupted).hexdigest()

    with pytest.raises(DownloadError) as info:
        download(spec.name, tmp_path, progress=False)

    message = str(info.value)
    assert spec.checkpoint.filename in message
    assert spec.checkpoint.sha256 in message
    assert got in message
    assert not _final(tmp_path, spec).exists()
    assert not _part(tmp_path, spec).exists()


def test_right_size_non_checkpoint_fails_load(server, make_model, blob, tiny_checkpoint, tmp_path):
    junk = blob[: len(tiny_checkpoint)]
    spec = _serve(server, make_model, junk, sha256=False)
    assert spec.checkpoint.size == len(tiny_checkpoint)

    with pytest.raises(DownloadError) as info:
        download(spec.name, tmp_path, progress=False)

    message = str(info.value)
    assert spec.checkpoint.filename in message
    assert spec.name in message
    assert not _final(tmp_path, spec).exists()
    assert not _part(tmp_path, spec).exists()


def test_wrong_size_fails_size_check(server, make_model, tiny_checkpoint, tmp_path):
    expected = len(tiny_checkpoint) + 1
    spec = _serve(server, make_model, tiny_checkpoint, sha256=False, size=expected)

    with pytest.raises(DownloadError) as info:
        download(spec.name, tmp_path, progress=False)

    message = str(info.value)
    assert spec.checkpoint.filename in message
    assert str(expected) in message and str(len(tiny_checkpoint)) in message
    assert not _final(tmp_path, spec).exists()
    assert not _part(tmp_path, spec).exists()


# --------------------------------------------------------------------------- HTTP and network errors


def test_http_500_is_reported_and_part_kept(server, make_model, blob, tmp_path):
    spec = _serve(server, make_model, blob)
    server.mode = "error500"
    _part(tmp_path, spec).write_bytes(blob[:1000])

    with pytest.raises(DownloadError, match="500") as info:
        download(spec.name, tmp_path, progress=False)

    assert spec.checkpoint.url in str(info.value)
    assert _part(tmp_path, spec).read_bytes() == blob[:1000]
    assert not _final(tmp_path, spec).exists()


def test_http_404_names_the_url(server, make_model, blob, tmp_path):
    spec = _serve(server, make_model, blob)
    missing = server.base + "/nothing/here.pth"
    with pytest.raises(DownloadError, match="404") as info:
        download(spec.name, tmp_path, progress=False, url=missing)
    assert missing in str(info.value)
    assert not _final(tmp_path, spec).exists()


def test_url_override(server, make_model, blob, tmp_path):
    spec = make_model("http://127.0.0.1:9/never-used.pth", blob)
    server.files["/mirror/file.pth"] = blob
    path = download(spec.name, tmp_path, progress=False, url=server.base + "/mirror/file.pth")
    assert path.read_bytes() == blob
    assert [r["path"] for r in server.requests] == ["/mirror/file.pth"]


def test_unreachable_server(make_model, blob, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    spec = make_model(f"http://127.0.0.1:{port}/x.pth", blob)
    with pytest.raises(DownloadError, match="cannot reach"):
        download(spec.name, tmp_path, progress=False, timeout=5)
    assert not _final(tmp_path, spec).exists()


def test_stalled_transfer_times_out_and_keeps_part(server, make_model, blob, tmp_path):
    spec = _serve(server, make_model, blob)
    server.mode = "stall"
    with pytest.raises(DownloadError, match="after 1000 bytes"):
        download(spec.name, tmp_path, progress=False, timeout=0.5)
    server.release.set()
    assert _part(tmp_path, spec).read_bytes() == blob[:1000]
    assert not _final(tmp_path, spec).exists()

    server.mode = "normal"
    path = download(spec.name, tmp_path, progress=False)
    assert path.read_bytes() == blob
    assert server.requests[-1]["range"] == "bytes=1000-"


def test_model_without_checkpoint():
    with pytest.raises(DownloadError, match="no downloadable weights"):
        download("test-tiny", progress=False)


# --------------------------------------------------------------------------- cache


def test_cache_dir_precedence(monkeypatch, tmp_path):
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("TIJERAS_CACHE", raising=False)
    assert cache_dir() == home / ".cache" / "tijeras"

    monkeypatch.setenv("TIJERAS_CACHE", str(tmp_path / "env"))
    assert cache_dir() == tmp_path / "env"

    assert cache_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert cache_dir(str(tmp_path / "explicit")) == tmp_path / "explicit"
    assert not (tmp_path / "explicit").exists() and not (tmp_path / "env").exists()


def test_download_uses_env_cache(server, make_model, blob, tmp_path, monkeypatch):
    monkeypatch.setenv("TIJERAS_CACHE", str(tmp_path / "from-env"))
    spec = _serve(server, make_model, blob)
    path = download(spec.name, progress=False)
    assert path == tmp_path / "from-env" / spec.checkpoint.filename


def test_present_file_is_returned_without_network(server, make_model, blob, tmp_path):
    spec = _serve(server, make_model, blob)
    final = _final(tmp_path, spec)
    final.write_bytes(b"already here")

    assert download(spec.name, tmp_path, progress=False) == final
    assert server.requests == []
    assert final.read_bytes() == b"already here"

    # force fetches again and replaces it with the verified file.
    assert download(spec.name, tmp_path, progress=False, force=True) == final
    assert final.read_bytes() == blob
    assert len(server.requests) == 1


def test_model_table_marks_presence(server, make_model, blob, tmp_path):
    spec = _serve(server, make_model, blob)

    def row(name):
        (found,) = [r for r in model_table(tmp_path) if r["name"] == name]
        return found

    before = row(spec.name)
    assert before == {
        "name": spec.name,
        "aliases": list(spec.aliases),
        "description": "download test model",
        "filename": spec.checkpoint.filename,
        "size": len(blob),
        "check": "sha256",
        "present": False,
        "path": None,
    }
    download(spec.name, tmp_path, progress=False)
    after = row(spec.name)
    assert after["present"] is True
    assert after["path"] == str(_final(tmp_path, spec))

    tiny = row("test-tiny")
    assert tiny["filename"] is None and tiny["present"] is False and tiny["path"] is None
    vit_b = row("sam-vit-b")
    assert vit_b["filename"] == "sam_vit_b_01ec64.pth" and vit_b["size"] == 375042383
    assert [r["name"] for r in model_table(tmp_path)] == list_models()
