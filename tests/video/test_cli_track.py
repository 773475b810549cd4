"""``tijeras track`` and ``tijeras eval-video`` through the Typer app, on a small SAM 2 model
registered for the tests: output files and layouts, prompt parsing, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner
from video.reference import small_config

from tijeras.catalog import REGISTRY
from tijeras.cli.main import app
from tijeras.cli.track import ordered_prompts
from tijeras.hub.registry import ModelSpec
from tijeras.io.rle import decode_coco_rle

MODEL = "test-sam2-video"
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module", autouse=True)
def small_model():
    REGISTRY.add(
        ModelSpec(
            name=MODEL,
            family="sam2",
            config=small_config("2.1"),
            description="small random SAM 2.1 (tests)",
        )
    )
    yield
    REGISTRY.remove(MODEL)


@pytest.fixture()
def clip(clip_dir: Path, tmp_path: Path) -> Path:
    """The first 12 bedroom frames, at half size."""
    folder = tmp_path / "bedroom"
    folder.mkdir()
    for p in sorted(clip_dir.glob("*.jpg"))[:12]:
        Image.open(p).resize((480, 270)).save(folder / p.name, quality=95)
    return folder


def run(*args: str):
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_prompt_order_decides_the_object():
    raw = [
        "clip",
        "--point",
        "0:1,2",
        "-n",
        "0:3,4",
        "--obj",
        "2",
        "--box=5:0,0,9,9",
        "-p3:7,8",
        "--out",
        "x",
    ]
    assert ordered_prompts(raw) == [
        ("point", "0:1,2"),
        ("neg", "0:3,4"),
        ("obj", "2"),
        ("box", "5:0,0,9,9"),
        ("point", "3:7,8"),
    ]


def test_track_writes_pngs_json_and_overlay(clip: Path, tmp_path: Path):
    out = tmp_path / "out"
    code, text = run(
        "track",
        str(clip),
        "--point",
        "0:105,175",
        "--neg-point",
        "0:300,60",
        "--obj",
        "7",
        "--box",
        "2:50,40,150,200",
        "--out",
        str(out),
        "-m",
        MODEL,
    )
    assert code == 0, text
    assert "tracked 2 object(s) (1, 7) over 12 frames" in text and "frames/s" in text
    pngs = sorted((out / "bedroom").glob("*.png"))
    assert [p.stem for p in pngs] == [f"{i:05d}" for i in range(12)]
    first = Image.open(pngs[0])
    assert first.mode == "P" and first.size == (480, 270)
    assert set(np.unique(np.array(first))) <= {0, 1, 7}
    data = json.loads((out / "bedroom.json").read_text())
    assert data["masklet_id"] == [1, 7] and data["video_frame_count"] == 12
    assert len(data["masklet"]) == 12 and data["masklet_frame_index"] == list(range(12))
    labels = np.array(Image.open(pngs[4]))
    for row, obj in zip(data["masklet"][4], (1, 7)):
        mask = decode_coco_rle(row)
        assert mask.shape == (270, 480)
        assert not (labels == obj)[~mask].any(), "a labelled pixel outside its RLE mask"
    import cv2

    cap = cv2.VideoCapture(str(out / "bedroom_overlay.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    cap.release()


def test_track_matches_the_predictor(clip: Path, tmp_path: Path):
    from tijeras.models.sam2.model import Sam2Model
    from tijeras.models.sam2.video_config import tracking_config
    from tijeras.sam2.video_predictor import SAM2VideoPredictor

    out = tmp_path / "out"
    code, text = run(
        "track",
        str(clip),
        "--point",
        "3:105,175",
        "--out",
        str(out),
        "--formats",
        "png",
        "-m",
        MODEL,
    )
    assert code == 0, text
    torch.manual_seed(0)  # the CLI builds random-weight test models from seed 0
    model = Sam2Model(small_config("2.1")).eval()
    predictor = SAM2VideoPredictor(model, tracking_config(model.config))
    state = predictor.init_state(str(clip))
    predictor.add_new_points_or_box(state, 3, 1, points=[[105, 175]], labels=[1])
    for f, _, logits in predictor.propagate_in_video(state):
        labels = np.array(Image.open(out / "bedroom" / f"{f:05d}.png"))
        assert np.array_equal(labels == 1, (logits[0, 0] > 0).numpy()), f"frame {f}"
    for f in range(3):  # before the prompt: empty
        assert not np.array(Image.open(out / "bedroom" / f"{f:05d}.png")).any()


def test_track_in_reverse_with_a_mask(clip: Path, tmp_path: Path):
    mask = np.zeros((270, 480), np.uint8)
    mask[60:200, 40:160] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    out = tmp_path / "out"
    code, text = run(
        "track",
        str(clip),
        "--mask",
        f"6:{tmp_path / 'm.png'}",
        "--reverse",
        "--out",
        str(out),
        "--formats",
        "png,json",
        "-m",
        MODEL,
    )
    assert code == 0, text
    assert "over 7 frames" in text
    data = json.loads((out / "bedroom.json").read_text())
    assert data["masklet_frame_index"] == [6, 5, 4, 3, 2, 1, 0]
    assert len(list((out / "bedroom").glob("*.png"))) == 12


@pytest.mark.parametrize(
    "args, message",
    [
        (["--point", "40:10,10"], "error: frame index 40 is out of range for "),
        (["--point", "0:900,10"], "error: point 0 (900, 10) is outside frame 0 (480 x 270 pixels)"),
        (["--point", "0:10"], "error: --point expects F:X,Y (two numbers separated by commas)"),
        (["--point", "10,10"], "error: --point expects F:X,Y (F the frame index)"),
        (["--box", "0:50,40,10,10"], "error: box (50, 40, 10, 10) has x1 < x0 or y1 < y0"),
        (["--obj", "0", "--point", "0:1,1"], "error: --obj expects an object id from 1 to 255"),
        (["--out", "x"], "error: give at least one prompt"),
        (["--point", "0:1,1", "--formats", "gif"], "error: --formats: unknown format 'gif'"),
    ],
)
def test_track_errors_are_one_line(clip: Path, tmp_path: Path, args, message):
    if "--out" not in args:
        args = [*args, "--out", str(tmp_path / "o")]
    code, text = run("track", str(clip), *args, "-m", MODEL)
    lines = [line for line in text.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1 and lines[0].startswith(message), text


def test_unreadable_video_is_one_line(tmp_path: Path):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"\x00" * 64)
    code, text = run("track", str(bad), "--point", "0:1,1", "--out", str(tmp_path), "-m", MODEL)
    assert code == 2 and text.strip().splitlines()[-1].startswith("error: ")
    assert str(bad) in text
    code, text = run(
        "track", str(tmp_path / "none.mp4"), "--point", "0:1,1", "--out", str(tmp_path), "-m", MODEL
    )
    assert code == 2 and "error: video" in text and "not found" in text


def test_track_refuses_an_image_model(clip: Path, tmp_path: Path):
    code, text = run(
        "track", str(clip), "--point", "0:1,1", "--out", str(tmp_path), "-m", "test-tiny"
    )
    assert code == 2 and "cannot track videos" in text


def test_track_an_mp4(clip: Path, tmp_path: Path):
    import cv2

    video = tmp_path / "walk.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 12.0, (480, 270))
    for p in sorted(clip.glob("*.jpg"))[:6]:
        writer.write(cv2.imread(str(p)))
    writer.release()
    out = tmp_path / "out"
    code, text = run(
        "track", str(video), "--box", "1:50,40,150,200", "--out", str(out), "-m", MODEL
    )
    assert code == 0, text
    assert sorted(p.stem for p in (out / "walk").glob("*.png")) == [f"{i:05d}" for i in range(6)]
    assert json.loads((out / "walk.json").read_text())["masklet_frame_index"] == [1, 2, 3, 4, 5]
    cap = cv2.VideoCapture(str(out / "walk_overlay.mp4"))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(12.0)
    cap.release()


def test_a_missing_video_is_named_before_the_model_is_looked_for(tmp_path) -> None:
    missing = tmp_path / "missing.mp4"
    args = ["track", str(missing), "--point", "0:1,1", "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(app, [*args, "--cache", str(tmp_path / "empty-cache")])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: video not found: {missing}"
