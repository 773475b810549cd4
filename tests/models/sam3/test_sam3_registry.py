"""SAM 3 in the registry: listed with its gated file, built and loaded through
``tijeras.load_model`` / ``build_model`` like every family, a wrong file named, and the
click-evaluation protocols of ``tijeras eval`` run on its interactive head."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers.shapes import make_shapes_dataset
from typer.testing import CliRunner

import tijeras
from tijeras.catalog import build_model, get_spec, list_models
from tijeras.cli.main import app
from tijeras.contract import SegmentationModel
from tijeras.errors import CheckpointError


def test_registered_with_a_gated_checkpoint() -> None:
    assert {"sam3", "sam3-test-tiny"} <= set(list_models("sam3*"))
    spec = get_spec("facebook/sam3")
    assert spec.name == "sam3" and spec.family == "sam3"
    assert spec.checkpoint is not None and spec.checkpoint.gated
    assert spec.checkpoint.filename == "sam3.pt"
    assert get_spec("sam3-test-tiny").checkpoint is None


def test_load_model_and_its_own_state_dict_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = tijeras.load_model("sam3-test-tiny")
    assert isinstance(model, SegmentationModel) and model.name == "sam3-test-tiny"
    assert {"text", "exemplars", "points", "boxes", "masks"} == set(model.input_spec.prompt_kinds)
    path = tmp_path / "tiny.pt"
    torch.save(model.state_dict(), path)
    again = build_model("sam3-test-tiny", path)
    for (name, a), b in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_wrong_file_is_named(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = tmp_path / "sam_vit.pth"
    torch.save(build_model("test-tiny").state_dict(), path)
    with pytest.raises(CheckpointError) as err:
        build_model("sam3-test-tiny", path)
    message = str(err.value)
    assert str(path) in message and "not a SAM 3 checkpoint" in message
    assert "SAM (ViT) checkpoint" in message


def test_click_evaluation_runs_on_the_interactive_head(tmp_path: Path) -> None:
    data = make_shapes_dataset(tmp_path / "d", 2, seed=0, size=64)
    out = tmp_path / "res.json"
    args = ["eval", "--data", data, "--model", "sam3-test-tiny", "--max-clicks", "3",
            "--out", out, "-q"]  # fmt: skip
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert "NoC@90" in result.output and "mIoU, box prompt" in result.output
    saved = json.loads(out.read_text())
    summary = saved["summary"]
    assert saved["info"]["model"] == "sam3-test-tiny" and summary["objects"] == 2
    assert len(summary["miou_curve"]) == 3
    assert all(0.0 <= v <= 1.0 for v in summary["miou_curve"])
