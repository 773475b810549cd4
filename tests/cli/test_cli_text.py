"""Concept prompts on the command line: ``segment --text``, ``everything --text``, the gated
``sam3`` entry of ``models`` / ``download``, and ``tijeras mcp``.

In-process on the random-weight ``sam3-test-tiny`` (seeded by the CLI), with a low
``--text-threshold`` since random weights score about 0.2.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from tijeras.catalog import FAMILIES, build_model
from tijeras.cli import text as text_cli
from tijeras.cli.main import app

TINY = ["--model", "sam3-test-tiny", "--text-threshold", "0.1"]


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()


def _image(path: Path, width: int = 96, height: int = 64, seed: int = 0) -> Path:
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 2 % 256, y * 3 % 256, (x + y + seed * 40) % 256], -1).astype(np.uint8)
    rgb[height // 4 : 3 * height // 4, width // 3 : 2 * width // 3] = (250, 240, 30)
    Image.fromarray(rgb).save(path)
    return path


def run(runner: CliRunner, *args):
    return runner.invoke(app, [str(a) for a in args])


def assert_user_error(result, *fragments: str) -> str:
    """Exit code 2, exactly one ``error:`` line, no traceback; returns that line."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def _png(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.mode == "L"
        return np.asarray(img)


# ----------------------------------------------------------------------------- segment --text


def test_segment_text_writes_one_png_per_instance_and_coco(runner, tmp_path) -> None:
    image = _image(tmp_path / "market.png")
    out = tmp_path / "found"
    result = run(
        runner, "segment", image, "--text", "tomato", "--text", "red apple", *TINY,
        "--out", out, "--overlay", tmp_path / "overlay.png",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "'tomato':" in result.stdout and "'red apple':" in result.stdout
    dataset = json.loads((out / "market.json").read_text())
    assert [c["name"] for c in dataset["categories"]] == ["tomato", "red apple"]
    by_category = {1: 0, 2: 0}
    for annotation in dataset["annotations"]:
        by_category[annotation["category_id"]] += 1
        assert 0.1 < annotation["score"] <= 1.0
    tomatoes = sorted(out.glob("tomato_*.png"))
    apples = sorted(out.glob("red_apple_*.png"))
    assert len(tomatoes) == by_category[1] > 0 and len(apples) == by_category[2] > 0
    first = _png(tomatoes[0])
    assert first.shape == (64, 96) and set(np.unique(first)) <= {0, 255}
    tomato = next(a for a in dataset["annotations"] if a["category_id"] == 1)
    assert tomato["area"] == int((first > 0).sum())  # best first in both
    assert Image.open(tmp_path / "overlay.png").size == (96, 64)


def test_segment_exemplar_and_nothing_found(runner, tmp_path) -> None:
    image = _image(tmp_path / "a.png")
    result = run(
        runner, "segment", image, "--exemplar", "30,16,70,48", "--neg-exemplar", "0,0,20,20",
        "--model", "sam3-test-tiny", "--text-threshold", "1", "--out", tmp_path / "o",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "'exemplar': 0 instances" in result.stdout
    dataset = json.loads((tmp_path / "o" / "a.json").read_text())
    assert dataset["annotations"] == [] and dataset["categories"][0]["name"] == "exemplar"


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--text", ""], ["empty phrase"]),
        (["--text", "big " * 40], ["40 tokens", "context length is 32"]),
        (["--text", "x", "--text", "x"], ["given twice"]),
        (["--text", "x", "--point", "5,5"], ["one kind per call"]),
        (["--text", "x", "--multimask"], ["--multimask"]),
        (["--text", "x", "--cutout", "c.png"], ["--cutout"]),
        (["--text", "x", "--sticker", "s.webp"], ["--sticker"]),
        (["--exemplar", "50,10,20,30"], ["x1 < x0"]),
        (["--exemplar", "1,2,3"], ["--exemplar", "X0,Y0,X1,Y1"]),
        (["--neg-exemplar", "1,2,30,30"], ["--neg-exemplar alone"]),
        (["--exemplar", "0,0,500,30"], ["outside the 96x64 image"]),
    ],
)
def test_segment_text_mistakes_are_one_error_line(runner, tmp_path, args, fragments) -> None:
    image = _image(tmp_path / "a.png")
    result = run(runner, "segment", image, *args, "--model", "sam3-test-tiny")
    assert_user_error(result, *fragments)


def test_segment_text_needs_a_text_model(runner, tmp_path) -> None:
    image = _image(tmp_path / "a.png")
    result = run(runner, "segment", image, "--text", "tomato", "--model", "test-tiny")
    assert_user_error(result, "takes text prompts", "sam3", "--model test-tiny does not")
    # without --model the command takes sam3, whose gated weights are not in an empty cache
    result = run(runner, "segment", image, "--text", "tomato", "--cache", tmp_path / "c")
    assert_user_error(result, "no weights for sam3", "tijeras download sam3")


def test_text_families_are_the_families_that_take_text() -> None:
    """The CLI's torch-free list of text families equals what the built models declare."""
    takes = set()
    for family in FAMILIES:
        spec = min(family.specs, key=lambda s: s.checkpoint is not None)  # a test variant first
        torch.manual_seed(0)
        if "text" in build_model(spec.name).input_spec.prompt_kinds:
            takes.add(family.name)
    assert takes == set(text_cli.TEXT_FAMILIES)


# ----------------------------------------------------------------------------- everything --text


def test_everything_text_labels_a_folder_by_concepts(runner, tmp_path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    _image(photos / "one.png", seed=0)
    _image(photos / "two.jpg", seed=1)
    (photos / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "labels"
    args = ["everything", photos, "--text", "car", "--text", "person", *TINY, "--out", out,
            "--formats", "coco,png,yolo,polygons,overlay"]  # fmt: skip
    result = run(runner, *args)
    assert result.exit_code == 0, result.output
    assert "skipped broken" in result.stderr and "2 done" in result.stdout
    merged = json.loads((out / "coco_all.json").read_text())
    assert [c["name"] for c in merged["categories"]] == ["car", "person"]
    assert {a["category_id"] for a in merged["annotations"]} == {1, 2}
    assert len(merged["images"]) == 2
    one = json.loads((out / "one.json").read_text())
    classes = [int(line.split()[0]) for line in (out / "one.txt").read_text().splitlines()]
    assert sorted(set(classes)) == [0, 1]
    polygons = json.loads((out / "one_polygons.json").read_text())["objects"]
    assert [o["category"] for o in polygons] == [
        ["car", "person"][a["category_id"] - 1] for a in one["annotations"]
    ]
    assert len(list((out / "one_masks").glob("*.png"))) == len(one["annotations"])
    assert all(a["score"] > 0.1 and "stability_score" not in a for a in one["annotations"])

    again = run(runner, *args)  # resumable: done images are skipped
    assert again.exit_code == 0 and "2 skipped" in again.stdout


def test_everything_text_refuses_grid_options_and_tiles(runner, tmp_path) -> None:
    image = _image(tmp_path / "a.png")
    base = ["everything", image, "--text", "car", "--out", tmp_path / "o"]
    assert_user_error(run(runner, *base, "--points-per-side", "8"), "--points-per-side")
    assert_user_error(run(runner, *base, "--tile", "512"), "--tile")
    assert_user_error(run(runner, *base, "--model", "mobile-sam"), "takes text prompts")
    result = run(runner, *base, "--text", "very " * 40, "--model", "sam3-test-tiny")
    assert_user_error(result, "context length is 32")


# ----------------------------------------------------------------------------- models, download


def test_models_and_download_say_sam3_is_gated(runner, tmp_path) -> None:
    listing = run(runner, "models", "--cache", tmp_path)
    assert listing.exit_code == 0
    row = next(line for line in listing.stdout.splitlines() if line.startswith("sam3 "))
    assert "gated" in row and "`tijeras download sam3`" in row
    # a fresh process: the download command fills the registry itself
    done = subprocess.run(
        [sys.executable, "-m", "tijeras", "download", "sam3", "--cache", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    assert "gated" in line and "huggingface.co/facebook/sam3" in line
    assert str(tmp_path / "sam3.pt") in line and "--checkpoint" in line


# ----------------------------------------------------------------------------- mcp


def test_mcp_command(runner) -> None:
    result = run(runner, "mcp", "--help")
    assert result.exit_code == 0 and "tijeras mcp" in result.stdout
    assert "--checkpoint" in result.stdout and "Protocol" in result.stdout
    assert_user_error(run(runner, "mcp", "--model", "sam-vit-q"), "sam-vit-q")
