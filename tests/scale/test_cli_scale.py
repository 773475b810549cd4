"""``tijeras everything --ray`` flag checks (before any cluster is reached), the message when
Ray is missing, and ``tijeras scale-report``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from helpers.scale import FAST, FAST_FLAGS, write_broken, write_images
from PIL import Image
from typer.testing import CliRunner

from tijeras.cli.main import app
from tijeras.scale import label_dataset


def run(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_one_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


@pytest.mark.parametrize(
    ("flags", "fragments"),
    [
        (["--workers", "2"], ["--workers needs --ray"]),
        (["--ray", "local", "--formats", "png"], ["--formats does not apply to --ray"]),
        (["--ray", "local", "--gpus-per-worker", "1"], ["--device cuda"]),
        (["--ray", "local", "--device", "cuda"], ["needs --gpus-per-worker"]),
        (["--ray", "local", "--pred-iou-thresh", "2"], ["--pred-iou-thresh must be at most 1"]),
        (["--ray", "local", "--workers", "0"], ["--workers"]),
    ],
)
def test_bad_ray_flags_are_one_error_line(tmp_path: Path, flags, fragments) -> None:
    write_images(tmp_path / "in", 1)
    result = run(
        "everything", tmp_path / "in", "--out", tmp_path / "out", "--model", "test-tiny", *flags
    )
    if "--workers" in flags and "0" in flags:  # Typer's own range check
        assert result.exit_code == 2 and "Traceback" not in result.output
        return
    assert_one_error(result, *fragments)
    assert not (tmp_path / "out" / "_tijeras").exists()


def test_without_ray_the_command_says_how_to_install_it(tmp_path: Path, monkeypatch) -> None:
    write_images(tmp_path / "in", 1)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    result = run(
        "everything",
        tmp_path / "in",
        "--out",
        tmp_path / "out",
        "--model",
        "test-tiny",
        *FAST_FLAGS,
        "--ray",
        "local",
    )
    assert_one_error(result, "Ray is not installed", "pip install 'tijeras[scale]'")


def test_scale_report_counts_reasons_and_draws_the_histogram(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    write_images(tmp_path / "in", 3)
    write_broken(tmp_path / "in" / "bad.jpg")
    label_dataset(
        str(tmp_path / "in"), str(tmp_path / "out"), model="test-tiny", options=FAST, progress=False
    )
    result = run("scale-report", tmp_path / "out", "--png", tmp_path / "hist.png")
    assert result.exit_code == 0, result.output
    assert "images: 4  done: 3  failed: 1" in result.stdout
    assert "1 x not an image file" in result.stdout
    assert "model test-tiny" in result.stdout
    with Image.open(tmp_path / "hist.png") as image:
        assert image.format == "PNG" and image.width > 100
    result = run("scale-report", tmp_path / "out")
    assert (tmp_path / "out" / "_tijeras" / "masks_per_image.png").is_file()


def test_scale_report_of_a_folder_without_index_is_one_error(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    assert_one_error(run("scale-report", tmp_path), "no index in")


def test_a_ray_address_where_nothing_listens_is_one_error(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    from helpers.ray_cluster import free_port

    write_images(tmp_path / "in", 1)
    result = run(
        "everything",
        tmp_path / "in",
        "--out",
        tmp_path / "out",
        "--model",
        "test-tiny",
        *FAST_FLAGS,
        "--ray",
        f"127.0.0.1:{free_port()}",
    )
    assert_one_error(result, "no Ray cluster at '127.0.0.1:", "ray start --head")
    assert not (tmp_path / "out").exists()
