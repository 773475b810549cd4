"""``tijeras everything``: outputs, folder runs (broken images, resume, --force), flags, tiling.

Runs the Typer app in-process on the random-weight ``test-tiny`` model with a 4 x 4 point grid
and thresholds at 0 (random weights score low), on small synthetic images.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tijeras.cli.main import app

FAST = [
    "--model",
    "test-tiny",
    "--points-per-side",
    "4",
    "--pred-iou-thresh",
    "0",
    "--stability-score-thresh",
    "0",
]
ALL_FORMATS = "coco,png,overlay,yolo,polygons"


def _image(path: Path, width: int = 96, height: int = 64, seed: int = 0) -> Path:
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 2 % 256, y * 3 % 256, (x + y + seed * 40) % 256], axis=-1).astype(np.uint8)
    rgb[height // 4 : 3 * height // 4, width // 3 : 2 * width // 3] = (250, 240, 30)
    Image.fromarray(rgb).save(path)
    return path


def run(*args: object):
    return CliRunner().invoke(app, ["everything", *[str(a) for a in args]])


def assert_user_error(result, *fragments: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def _mtimes(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()
    }


# --- defaults ------------------------------------------------------------------------------


def test_flags_default_to_the_model_familys_options(tmp_path: Path, monkeypatch) -> None:
    """Options left out take the family's defaults: SAM 2 runs with SAM 2's (pred_iou_thresh
    0.8), SAM with Meta's 0.88; a flag given overrides just that option."""
    import torch
    import typer.main

    from tijeras.automatic.options import SAM2_EVERYTHING, SAM_EVERYTHING
    from tijeras.catalog import build_model

    command = typer.main.get_command(app).commands["everything"]
    flags = {p.name: p.default for p in command.params}
    for name in SAM_EVERYTHING.as_dict():
        if name in flags:
            assert flags[name] is None, name  # None: the model's own default
    assert flags["formats"] == "coco,overlay"

    seen = []
    for family in ("sam", "sam2"):
        module = importlib.import_module(f"tijeras.models.{family}.model")
        cls = module.Sam if family == "sam" else module.Sam2Model
        original = cls.mask_generator

        def spy(self, options, output_mode="binary_mask", _original=original):
            seen.append(options)
            return _original(self, options, output_mode)

        monkeypatch.setattr(cls, "mask_generator", spy)

    image = _image(tmp_path / "photo.png", 64, 48)
    torch.manual_seed(0)
    weights = tmp_path / "sam2.pt"
    torch.save(build_model("sam2.1-hiera-tiny").state_dict(), weights)
    for model, checkpoint, expected in (
        ("test-tiny", [], SAM_EVERYTHING),
        ("sam2.1-hiera-tiny", ["--checkpoint", weights], SAM2_EVERYTHING),
    ):
        seen.clear()
        result = run(
            image,
            "--out",
            tmp_path / model,
            "--model",
            model,
            *checkpoint,
            "--points-per-side",
            "2",
        )
        assert result.exit_code == 0, result.output
        [options] = seen
        assert options == expected.replace(points_per_side=2)
    assert SAM2_EVERYTHING.pred_iou_thresh == 0.8 and SAM_EVERYTHING.pred_iou_thresh == 0.88


def test_option_errors_name_the_flag(tmp_path: Path) -> None:
    image = _image(tmp_path / "photo.png")
    result = run(
        image,
        "--out",
        tmp_path / "o",
        "--model",
        "test-tiny",
        "--points-per-side",
        "2",
        "--crop-n-layers",
        "2",
        "--crop-n-points-downscale-factor",
        "2",
    )
    assert_user_error(result, "--points-per-side 2", "--crop-n-points-downscale-factor")


def test_more_than_255_masks_in_a_folder_run(tmp_path: Path) -> None:
    """pycocotools' area() of a list overflows above 255 RLEs: a busy image must still give
    every mask in its COCO file and in the folder's coco_all.json."""
    folder = tmp_path / "photos"
    folder.mkdir()
    _image(folder / "busy.png", 96, 64)
    out = tmp_path / "out"
    keep_all = [
        "--model",
        "test-tiny",
        "--points-per-side",
        "12",
        "--pred-iou-thresh",
        "0",
        "--stability-score-thresh",
        "0",
        "--box-nms-thresh",
        "1",
        "--formats",
        "coco",
    ]
    result = run(folder, "--out", out, *keep_all)
    assert result.exit_code == 0, result.output
    per_image = json.loads((out / "busy.json").read_text())
    merged = json.loads((out / "coco_all.json").read_text())
    assert len(per_image["annotations"]) >= 300
    assert len(merged["annotations"]) == len(per_image["annotations"])
    assert all(a["area"] > 0 for a in per_image["annotations"])


# --- one image -----------------------------------------------------------------------------


def test_one_image_writes_every_format(tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    image = _image(tmp_path / "photo.png", 96, 64)
    out = tmp_path / "out"
    result = run(image, "--out", out, "--formats", ALL_FORMATS, *FAST)
    assert result.exit_code == 0, result.output
    assert "photo:" in result.stdout

    coco = COCO(str(out / "photo.json"))
    [info] = coco.loadImgs(coco.getImgIds())
    assert (info["file_name"], info["width"], info["height"]) == ("photo.png", 96, 64)
    annotations = coco.loadAnns(coco.getAnnIds())
    assert annotations, "thresholds at 0 keep masks"
    for ann in annotations:
        mask = coco.annToMask(ann)
        assert mask.shape == (64, 96) and int(mask.sum()) == ann["area"]

    pngs = sorted((out / "photo_masks").iterdir())
    assert [p.name for p in pngs] == [f"{i:03d}.png" for i in range(len(annotations))]
    for p, ann in zip(pngs, annotations):
        pixels = np.asarray(Image.open(p))
        assert pixels.shape == (64, 96) and set(np.unique(pixels)) <= {0, 255}
        assert np.array_equal(pixels == 255, coco.annToMask(ann).astype(bool))

    overlay = Image.open(out / "photo_overlay.png")
    assert overlay.size == (96, 64) and overlay.mode == "RGB"

    for line in (out / "photo.txt").read_text().splitlines():
        fields = line.split()
        assert fields[0] == "0" and len(fields) % 2 == 1
        assert all(0.0 <= float(v) <= 1.0 for v in fields[1:])

    polygons = json.loads((out / "photo_polygons.json").read_text())
    assert (polygons["image"], polygons["width"], polygons["height"]) == ("photo.png", 96, 64)
    assert len(polygons["objects"]) == len(annotations)
    for obj in polygons["objects"]:
        for polygon in obj["polygons"]:
            assert len(polygon["exterior"]) >= 3 and all(len(p) == 2 for p in polygon["exterior"])

    assert not (out / "coco_all.json").exists()  # one image: no merged file
    assert not [p for p in out.rglob(".*")], "temporary files left behind"


def test_tiled_run_on_an_image_larger_than_the_tile(tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    image = _image(tmp_path / "wide.png", 160, 96)
    out = tmp_path / "out"
    result = run(
        image, "--out", out, "--tile", 96, "--tile-overlap", 32, "--formats", "coco,overlay", *FAST
    )
    assert result.exit_code == 0, result.output
    coco = COCO(str(out / "wide.json"))
    annotations = coco.loadAnns(coco.getAnnIds())
    assert annotations
    tiles = ([0, 0, 96, 96], [64, 0, 96, 96], [0, 0, 160, 96])  # a tile, or both merged
    for ann in annotations:
        assert coco.annToMask(ann).shape == (96, 160)
        assert ann["crop_box"] in tiles
    assert Image.open(out / "wide_overlay.png").size == (160, 96)


def test_a_large_image_without_tile_gets_a_note(tmp_path: Path) -> None:
    image = _image(tmp_path / "strip.png", 4200, 24)
    result = run(image, "--out", tmp_path / "out", "--formats", "coco", *FAST)
    assert result.exit_code == 0, result.output
    assert "--tile" in result.stderr and "4200x24" in result.stderr


# --- folders -------------------------------------------------------------------------------


def test_folder_run_skips_broken_images_resumes_and_forces(tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    folder = tmp_path / "photos"
    folder.mkdir()
    _image(folder / "a.png", 96, 64, seed=1)
    _image(folder / "b.jpg", 80, 72, seed=2)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 this is not really a jpeg")
    (folder / "notes.txt").write_text("not an image, ignored")
    out = tmp_path / "out"

    first = run(folder, "--out", out, "--formats", "coco,overlay,png", *FAST)
    assert first.exit_code == 0, first.output
    assert "skipped broken:" in first.stderr
    assert "summary: 2 done, 0 skipped (already done), 1 failed" in first.stdout
    for name in ("a", "b"):
        assert (out / f"{name}.json").is_file() and (out / f"{name}_overlay.png").is_file()
        assert (out / f"{name}_masks").is_dir()
    assert not (out / "broken.json").exists() and not (out / "notes.json").exists()
    merged = COCO(str(out / "coco_all.json"))
    assert sorted(i["file_name"] for i in merged.loadImgs(merged.getImgIds())) == ["a.png", "b.jpg"]
    single = json.loads((out / "a.json").read_text())
    assert len(merged.getAnnIds(imgIds=[single["images"][0]["id"]])) == len(single["annotations"])

    old = 1_000_000_000  # push every output into the past so a rewrite is unmistakable
    for p in out.rglob("*"):
        os.utime(p, ns=(old, old))
    before = _mtimes(out)

    second = run(folder, "--out", out, "--formats", "coco,overlay,png", *FAST)
    assert second.exit_code == 0, second.output
    assert "a: already done" in second.stdout and "b: already done" in second.stdout
    assert "summary: 0 done, 2 skipped (already done), 1 failed" in second.stdout
    after = _mtimes(out)
    assert after.keys() == before.keys()
    for name in ("a.json", "a_overlay.png", "b.json", "b_overlay.png", "a_masks/000.png"):
        assert after[name] == before[name], name

    third = run(folder, "--out", out, "--formats", "coco,overlay,png", "--force", *FAST)
    assert third.exit_code == 0, third.output
    assert "summary: 2 done, 0 skipped (already done), 1 failed" in third.stdout
    after = _mtimes(out)
    for name in ("a.json", "a_overlay.png", "b.json", "b_overlay.png", "b_masks/000.png"):
        assert after[name] != before[name], name
    assert not [p for p in out.rglob(".*")], "temporary files left behind"


def test_an_image_with_a_missing_output_is_redone(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    _image(folder / "a.png")
    out = tmp_path / "out"
    assert run(folder, "--out", out, "--formats", "coco", *FAST).exit_code == 0
    # asking for one more format: the image is not complete any more
    again = run(folder, "--out", out, "--formats", "coco,yolo", *FAST)
    assert again.exit_code == 0, again.output
    assert "summary: 1 done, 0 skipped" in again.stdout
    assert (out / "a.txt").is_file()


def test_folder_where_every_image_fails_exits_1(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "x.jpg").write_bytes(b"garbage")
    (folder / "y.png").write_bytes(b"")
    result = run(folder, "--out", tmp_path / "out", *FAST)
    assert result.exit_code == 1, result.output
    assert "skipped x:" in result.stderr and "skipped y:" in result.stderr
    assert "summary: 0 done, 0 skipped (already done), 2 failed" in result.stdout


# --- user errors ---------------------------------------------------------------------------


def test_missing_input_is_an_error_line(tmp_path: Path) -> None:
    result = run(tmp_path / "nowhere.jpg", "--out", tmp_path / "out", *FAST)
    assert_user_error(result, "input not found", "nowhere.jpg")


def test_one_broken_image_is_an_error_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    assert_user_error(run(bad, "--out", tmp_path / "out", *FAST), "bad.jpg")


def test_empty_folder_and_unknown_model_are_error_lines(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert_user_error(run(tmp_path / "empty", "--out", tmp_path / "out"), "no images")
    image = _image(tmp_path / "a.png")
    assert_user_error(run(image, "--out", tmp_path / "out", "--model", "nope"), "nope")


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--formats", "bogus"], "bogus"),
        (["--formats", "coco,,png,jpeg"], "jpeg"),
        (["--formats", " , "], "--formats"),
        (["--tile-overlap", "10"], "--tile"),
        (["--tile", "128", "--tile-overlap", "128"], "--tile-overlap"),
        (["--crop-overlap-ratio", "1.5"], "--crop-overlap-ratio"),
        (["--crop-n-layers", "2", "--crop-n-points-downscale-factor", "4"], "crop layer 2"),
    ],
)
def test_bad_flag_values_are_error_lines(tmp_path: Path, flags: list[str], fragment: str) -> None:
    image = _image(tmp_path / "a.png")
    assert_user_error(run(image, "--out", tmp_path / "out", *FAST, *flags), fragment)
    assert not (tmp_path / "out" / "a.json").exists()


@pytest.mark.parametrize(
    ("flags", "name"),
    [
        (["--pred-iou-thresh", "abc"], "--pred-iou-thresh"),
        (["--pred-iou-thresh", "1.5"], "--pred-iou-thresh"),
        (["--points-per-side", "0"], "--points-per-side"),
        (["--crop-overlap-ratio", "x"], "--crop-overlap-ratio"),
        (["--tile", "ten"], "--tile"),
        (["--dtype", "int8"], "--dtype"),
    ],
)
def test_unparsable_flag_values_exit_2(tmp_path: Path, flags: list[str], name: str) -> None:
    image = _image(tmp_path / "a.png")
    result = run(image, "--out", tmp_path / "out", *flags)
    assert result.exit_code == 2, result.output
    assert name in result.output and "Traceback" not in result.output


def test_overlay_drawn_in_chunks_matches_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    from tijeras.cli import everything
    from tijeras.io import coco_rle, overlay

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    masks = np.zeros((13, 40, 60), bool)
    for mask in masks:
        x0, y0 = rng.integers(0, 40), rng.integers(0, 25)
        mask[y0 : y0 + 15, x0 : x0 + 20] = True
    records = [{"segmentation": rle} for rle in coco_rle(masks)]
    expected = overlay(rgb, list(masks))
    assert np.array_equal(everything._overlay(rgb, records), expected)
    monkeypatch.setattr(everything, "OVERLAY_BUDGET", 3 * 40 * 60)  # 3 masks at a time
    assert np.array_equal(everything._overlay(rgb, records), expected)


def test_an_image_without_masks_still_gets_every_output(tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    image = _image(tmp_path / "plain.png")
    out = tmp_path / "out"
    # the generator's default thresholds drop every mask of the random-weight model
    result = run(
        image,
        "--out",
        out,
        "--formats",
        ALL_FORMATS,
        "--model",
        "test-tiny",
        "--points-per-side",
        "4",
    )
    assert result.exit_code == 0, result.output
    assert "plain: 0 masks" in result.stdout
    assert COCO(str(out / "plain.json")).getAnnIds() == []
    assert list((out / "plain_masks").iterdir()) == []
    assert (out / "plain.txt").read_text() == ""
    assert json.loads((out / "plain_polygons.json").read_text())["objects"] == []
    assert np.array_equal(
        np.asarray(Image.open(out / "plain_overlay.png")), np.asarray(Image.open(image))
    )
    again = run(image, "--out", out, "--formats", ALL_FORMATS, "--model", "test-tiny")
    assert "already done" in again.stdout
