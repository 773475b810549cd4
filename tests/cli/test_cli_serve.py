"""``tijeras serve``: option checks, and the model choice with its classical fallback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tijeras.cli.main import app
from tijeras.errors import DownloadError
from tijeras.server import backend as backend_module

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "sam-vit-q"], "unknown model 'sam-vit-q'"),
        (["--samples", "no/such/folder"], "--samples no/such/folder: not a folder"),
        (["--device", "warp-drive"], "--device 'warp-drive' is not a device name"),
        (["--folder", "no/such/folder"], "--folder no/such/folder: not a folder"),
        (["--port", "70000"], "--port 70000: a port is a number from 0 to 65535"),
        (["--max-images", "0"], "--max-images 0: at least one image must fit"),
    ],
)
def test_serve_rejects_bad_options(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["serve", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_serve_starts_uvicorn_with_the_settings(monkeypatch, tmp_path: Path) -> None:
    seen = {}

    def fake_run(application, listener):
        seen.update(app=application, address=listener.getsockname())

    monkeypatch.setattr("tijeras.cli.serve.run_server", fake_run)
    result = runner.invoke(
        app,
        ["serve", "--model", "test-tiny", "--port", "0", "--samples", str(tmp_path)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    host, port = seen["address"]
    assert host == "127.0.0.1" and port > 0
    assert f"open http://127.0.0.1:{port}/" in result.output
    settings = seen["app"].state.settings
    assert settings.model == "test-tiny" and settings.samples == str(tmp_path)


def test_serve_on_a_busy_port_is_one_error_line_before_the_model_loads(monkeypatch) -> None:
    """Found by a new user: the address was printed, then uvicorn's own message, exit 3."""
    loaded = []
    monkeypatch.setattr(
        "tijeras.server.backend.load_configured_backend", lambda s: loaded.append(s)
    )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(app, ["serve", "--model", "test-tiny", "--port", str(port)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [
        (
            f"error: port {port} on 127.0.0.1 is already in use (another tijeras or another "
            f"program): stop it, or pass --port with a free port such as {port + 1}"
        )
    ]
    assert loaded == []  # refused before the (slow) model load


def test_serve_refuses_a_host_that_is_not_here() -> None:
    result = runner.invoke(app, ["serve", "--model", "test-tiny", "--host", "203.0.113.7"])
    assert result.exit_code == 2
    assert "error: --host 203.0.113.7: not an address of this machine" in result.output


def test_serve_reports_a_bad_checkpoint_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"not a checkpoint")
    result = runner.invoke(app, ["serve", "--model", "sam-vit-b", "--checkpoint", str(bad)])
    assert result.exit_code == 2
    assert "error:" in result.output and "broken.pth" in result.output
    assert "Traceback" not in result.output


def test_backend_falls_back_to_classic_when_the_download_fails(monkeypatch, tmp_path) -> None:
    def offline(name, cache=None, **kwargs):
        raise DownloadError("cannot reach dl.fbaipublicfiles.com: Name or service not known")

    monkeypatch.setattr("tijeras.hub.download.download", offline)
    loaded = backend_module.load_backend("sam-vit-b", cache=tmp_path)
    assert loaded.name == "classic" and loaded.is_fallback
    assert "could not be downloaded" in loaded.fallback_reason
    assert "Name or service not known" in loaded.fallback_reason
    skipped = backend_module.load_backend("sam-vit-b", cache=tmp_path, download=False)
    assert "downloading is switched off" in skipped.fallback_reason


def test_backend_uses_a_cached_checkpoint(monkeypatch, tmp_path: Path) -> None:
    import torch

    from tijeras.catalog import build_model

    torch.manual_seed(0)
    model = build_model("sam-vit-b")
    torch.save(model.state_dict(), tmp_path / "sam_vit_b_01ec64.pth")
    loaded = backend_module.load_backend("sam-vit-b", cache=tmp_path, download=False)
    assert loaded.name == "sam-vit-b" and not loaded.is_fallback


def test_an_explicit_bad_checkpoint_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    from tijeras.errors import TijerasError

    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(TijerasError, match="broken.pth"):
        backend_module.load_backend("sam-vit-b", bad)


class _Payload:
    """Unpickling this would create the file named by ``marker`` (code run by a checkpoint)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("nested", [False, True])
def test_a_malicious_checkpoint_is_refused_and_its_code_never_runs(
    tmp_path: Path, nested: bool
) -> None:
    import torch

    marker = tmp_path / "code-ran"
    evil = tmp_path / "evil.pth"
    payload = _Payload(marker)
    torch.save({"model": payload} if nested else payload, evil)
    for args in (
        ["serve", "--model", "sam-vit-b", "--checkpoint", str(evil), "--port", "0"],
        [
            "segment",
            str(_tiny_png(tmp_path)),
            "-p",
            "2,2",
            "-m",
            "sam-vit-b",
            "--checkpoint",
            str(evil),
        ],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        error = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(error) == 1 and "Traceback" not in result.output
        assert "evil.pth holds Python objects other than tensors" in error[0]
        assert "could run code" in error[0]
    assert not marker.exists()


def _tiny_png(folder: Path) -> Path:
    from PIL import Image

    path = folder / "tiny.png"
    Image.new("RGB", (8, 8), (200, 10, 10)).save(path)
    return path
