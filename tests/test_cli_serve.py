"""``tijeras serve``: option checks, and the model choice with its classical fallback."""

from __future__ import annotations

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
    ],
)
def test_serve_rejects_bad_options(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["serve", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_serve_starts_uvicorn_with_the_settings(monkeypatch, tmp_path: Path) -> None:
    seen = {}

    def fake_run(application, host, port, **kwargs):
        seen.update(app=application, host=host, port=port)

    monkeypatch.setattr("uvicorn.run", fake_run)
    result = runner.invoke(
        app, ["serve", "--model", "test-tiny", "--port", "8123", "--samples", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8123
    settings = seen["app"].state.settings
    assert settings.model == "test-tiny" and settings.samples == str(tmp_path)


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

    monkeypatch.setattr("tijeras.model.download.download", offline)
    loaded = backend_module.load_backend("sam-vit-b", cache=tmp_path)
    assert loaded.name == "classic" and loaded.is_fallback
    assert "could not be downloaded" in loaded.fallback_reason
    assert "Name or service not known" in loaded.fallback_reason
    skipped = backend_module.load_backend("sam-vit-b", cache=tmp_path, download=False)
    assert "downloading is switched off" in skipped.fallback_reason


def test_backend_uses_a_cached_checkpoint(monkeypatch, tmp_path: Path) -> None:
    import torch

    from tijeras.model.registry import build_model

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
