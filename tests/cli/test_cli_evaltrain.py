"""``tijeras eval`` and ``tijeras train`` in-process on the random ``test-tiny`` model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.shapes import make_shapes_dataset
from PIL import Image
from typer.testing import CliRunner

from tijeras.cli.main import app

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_eval_writes_table_json_and_plot(tmp_path: Path) -> None:
    data = make_shapes_dataset(tmp_path / "d", 2, seed=0, size=64)
    out = tmp_path / "res.json"
    result = _run("eval", "--data", data, "--model", "test-tiny", "--max-clicks", "3",
                  "--out", out, "-q")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "NoC@90" in result.output and "mIoU, box prompt" in result.output
    saved = json.loads(out.read_text())
    assert saved["summary"]["objects"] == 2 and len(saved["summary"]["miou_curve"]) == 3
    assert saved["info"]["model"] == "test-tiny"
    assert [o["name"] for o in saved["objects"]] == ["shape000", "shape001"]
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


def _broken(tmp_path: Path, kind: str) -> Path:
    data = make_shapes_dataset(tmp_path / kind, 1, seed=0, size=64)
    mask = data / "masks" / "shape000.png"
    if kind == "nomask":
        mask.unlink()
    elif kind == "size":
        Image.fromarray(np.zeros((10, 12), np.uint8)).save(mask)
    elif kind == "empty":
        Image.fromarray(np.zeros((64, 64), np.uint8)).save(mask)
    return data


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("missing", "dataset folder not found"),
        ("nomask", "shape000.png"),
        ("size", "shape000.png: mask is 12x10"),
        ("empty", "shape000.png: the object mask is empty"),
    ],
)
@pytest.mark.parametrize("command", ["eval", "train"])
def test_user_mistakes_are_one_error_line(
    tmp_path: Path, kind: str, expected: str, command: str
) -> None:
    data = tmp_path / "nowhere" if kind == "missing" else _broken(tmp_path, kind)
    result = _run(command, "--data", data, "--model", "test-tiny", "-q")
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and expected in lines[0], result.output
    assert "Traceback" not in result.output


def test_unknown_model(tmp_path: Path) -> None:
    data = make_shapes_dataset(tmp_path / "d", 1, seed=0, size=64)
    result = _run("eval", "--data", data, "--model", "sam-vit-z")
    assert result.exit_code == 2 and "error: unknown model 'sam-vit-z'" in result.output


def test_train_then_resume_then_eval_the_checkpoint(tmp_path: Path) -> None:
    data = make_shapes_dataset(tmp_path / "d", 4, seed=0, size=64)
    out = tmp_path / "ft.pth"
    common = ["train", "--data", data, "--model", "test-tiny", "--out", out, "--batch-size", "2",
              "--points", "1", "--val-clicks", "1", "--val-fraction", "0.25", "--warmup", "1",
              "--lr", "1e-3", "-q"]  # fmt: skip
    result = _run(*common, "--epochs", "1")
    assert result.exit_code == 0, result.output
    assert "3 training objects, 1 validation objects" in result.output
    for suffix in (".pth", ".best.pth", ".state.pt", ".metrics.jsonl", ".metrics.png"):
        assert (tmp_path / f"ft{suffix}").is_file(), suffix
    first = torch.load(out, weights_only=True)
    result = _run(*common, "--epochs", "2", "--resume", tmp_path / "ft.state.pt")
    assert result.exit_code == 0, result.output
    assert "resumed from" in result.output and "at epoch 1" in result.output
    rows = [json.loads(x) for x in (tmp_path / "ft.metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if r["kind"] == "val"] == [0, 1, 2]
    second = torch.load(out, weights_only=True)
    assert any(not torch.equal(first[k], second[k]) for k in first if k.startswith("mask_"))
    result = _run("eval", "--data", data, "--model", "test-tiny", "--checkpoint", out,
                  "--max-clicks", "2", "--out", tmp_path / "e.json", "-q")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "e.json").read_text())["info"]["checkpoint"] == str(out)
