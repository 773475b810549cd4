"""J, F and J&F of video object segmentation, checked against an independent implementation
(explicit per-pixel boundaries, Euclidean distance transforms instead of dilations), on DAVIS
and SA-V layouts, and the ``eval-video`` command end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from typer.testing import CliRunner

from tijeras.cli.main import app
from tijeras.errors import DatasetError
from tijeras.evaluate.video import (
    _disc,
    boundary_f,
    find_videos,
    region_j,
    score_predictions,
)
from tijeras.video.export import davis_palette

H, W = 40, 60


# ----------------------------------------------------------------------------- independent
def reference_boundary(mask: np.ndarray) -> np.ndarray:
    """Per pixel: differs from its right, lower or lower-right neighbour; on the last row only
    the right one counts, on the last column only the lower one, the corner never."""
    h, w = mask.shape
    out = np.zeros((h, w), bool)
    for y in range(h):
        for x in range(w):
            v = mask[y, x]
            right = mask[y, x + 1] if x + 1 < w else False
            down = mask[y + 1, x] if y + 1 < h else False
            diag = mask[y + 1, x + 1] if (x + 1 < w and y + 1 < h) else False
            if y == h - 1 and x == w - 1:
                out[y, x] = False
            elif y == h - 1:
                out[y, x] = v != right
            elif x == w - 1:
                out[y, x] = v != down
            else:
                out[y, x] = v != right or v != down or v != diag
    return out


def reference_f(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None) -> float:
    keep = np.ones(gt.shape, bool) if void is None else ~void
    gb, pb = reference_boundary(gt & keep), reference_boundary(pred & keep)
    r = math.ceil(0.008 * math.hypot(*gt.shape))
    if not gb.any() and not pb.any():
        return 1.0
    if not pb.any():
        return 0.0
    if not gb.any():
        return 0.0
    dist_to_gt = ndimage.distance_transform_edt(~gb)
    dist_to_pred = ndimage.distance_transform_edt(~pb)
    precision = (dist_to_gt[pb] <= r).mean()
    recall = (dist_to_pred[gb] <= r).mean()
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def reference_j(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None) -> float:
    keep = np.ones(gt.shape, bool) if void is None else ~void
    union = np.count_nonzero((gt | pred) & keep)
    return 1.0 if union == 0 else np.count_nonzero(gt & pred & keep) / union


def blob(rng: np.random.Generator, h: int = H, w: int = W) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    ry, rx = rng.uniform(3, h / 2), rng.uniform(3, w / 2)
    mask = ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1
    return mask ^ (rng.random((h, w)) < 0.03)


# ----------------------------------------------------------------------------- metrics
def test_disc_is_skimage_disk():
    from skimage.morphology import disk

    for r in range(12):
        assert np.array_equal(_disc(r), disk(r).astype(np.uint8))


def test_j_and_f_match_an_independent_implementation():
    rng = np.random.default_rng(0)
    for _ in range(25):
        gt, pred = blob(rng), blob(rng)
        void = rng.random((H, W)) < 0.05 if rng.random() < 0.5 else None
        assert region_j(gt, pred, void) == pytest.approx(reference_j(gt, pred, void), abs=1e-12)
        assert boundary_f(gt, pred, void) == pytest.approx(reference_f(gt, pred, void), abs=1e-12)


@pytest.mark.parametrize(
    "gt_empty, pred_empty, j, f",
    [(True, True, 1.0, 1.0), (True, False, 0.0, 0.0), (False, True, 0.0, 0.0)],
)
def test_empty_masks(gt_empty, pred_empty, j, f):
    full = np.zeros((H, W), bool)
    full[10:30, 10:40] = True
    gt = np.zeros_like(full) if gt_empty else full
    pred = np.zeros_like(full) if pred_empty else full
    assert region_j(gt, pred) == j and boundary_f(gt, pred) == f


# ----------------------------------------------------------------------------- datasets
def save_labels(path: Path, labels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(labels.astype(np.uint8), mode="P")
    img.putpalette(davis_palette())
    img.save(path)


def make_davis(root: Path, rng: np.random.Generator, videos=("a", "b"), frames=6):
    """Two videos with two objects each; predictions = ground truth with noise."""
    truth: dict = {}
    for v in videos:
        for f in range(frames):
            labels = np.zeros((H, W), np.uint8)
            for obj in (2, 1):
                labels[blob(rng)] = obj
            labels[rng.random((H, W)) < 0.01] = 255
            save_labels(root / "Annotations" / v / f"{f:05d}.png", labels)
            pred = labels.copy()
            pred[pred == 255] = 0
            pred[rng.random((H, W)) < 0.05] = rng.integers(0, 3)
            save_labels(root / "pred" / v / f"{f:05d}.png", pred)
            frame = (rng.random((H, W, 3)) * 255).astype(np.uint8)
            (root / "JPEGImages" / v).mkdir(parents=True, exist_ok=True)
            Image.fromarray(frame).save(root / "JPEGImages" / v / f"{f:05d}.jpg")
            truth[(v, f)] = (labels, pred)
    return truth


def test_davis_layout_scores(tmp_path: Path):
    truth = make_davis(tmp_path, np.random.default_rng(1))
    report = score_predictions(tmp_path, tmp_path / "pred")
    assert report.layout == "davis" and len(report.objects) == 4
    expected_j, expected_f = [], []
    for v in ("a", "b"):
        for obj in (1, 2):
            js, fs = [], []
            for f in range(1, 5):  # first and last frames are not scored
                labels, pred = truth[(v, f)]
                void = labels == 255
                js.append(reference_j(labels == obj, pred == obj, void))
                fs.append(reference_f(labels == obj, pred == obj, void))
            expected_j.append(np.mean(js))
            expected_f.append(np.mean(fs))
    assert report.j == pytest.approx(np.mean(expected_j), abs=1e-12)
    assert report.f == pytest.approx(np.mean(expected_f), abs=1e-12)
    assert report.jf == pytest.approx((np.mean(expected_j) + np.mean(expected_f)) / 2)


def test_sav_layout_scores_annotated_frames(tmp_path: Path):
    rng = np.random.default_rng(2)
    expected = []
    for obj in ("000", "001"):
        js, fs = [], []
        annotated = [0, 4, 8, 12]
        for k, f in enumerate(annotated):
            gt = blob(rng)
            pred = gt ^ (rng.random((H, W)) < 0.05)
            save_labels(tmp_path / "Annotations" / "v" / obj / f"{f:05d}.png", gt.astype(np.uint8))
            save_labels(tmp_path / "pred" / "v" / obj / f"{f:05d}.png", pred.astype(np.uint8))
            if 0 < k < len(annotated) - 1:
                js.append(reference_j(gt, pred))
                fs.append(reference_f(gt, pred))
        expected.append((np.mean(js), np.mean(fs)))
    (tmp_path / "JPEGImages" / "v").mkdir(parents=True)
    for f in range(13):
        Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(
            tmp_path / "JPEGImages" / "v" / f"{f:05d}.jpg"
        )
    report = score_predictions(tmp_path, tmp_path / "pred")
    assert report.layout == "sav" and [o.frames for o in report.objects] == [2, 2]
    assert report.j == pytest.approx(np.mean([e[0] for e in expected]), abs=1e-12)
    assert report.f == pytest.approx(np.mean([e[1] for e in expected]), abs=1e-12)


def test_dataset_errors(tmp_path: Path):
    with pytest.raises(DatasetError, match="is not a video dataset"):
        find_videos(tmp_path)
    make_davis(tmp_path, np.random.default_rng(3), videos=("a",), frames=3)
    with pytest.raises(DatasetError, match="videos not in"):
        find_videos(tmp_path, ["zzz"])
    (tmp_path / "pred" / "a" / "00001.png").unlink()
    with pytest.raises(DatasetError, match="missing prediction"):
        score_predictions(tmp_path, tmp_path / "pred")


# ----------------------------------------------------------------------------- command
def test_eval_video_command_with_predictions(tmp_path: Path):
    make_davis(tmp_path, np.random.default_rng(4))
    expected = score_predictions(tmp_path, tmp_path / "pred")
    result = CliRunner().invoke(
        app,
        [
            "eval-video",
            str(tmp_path),
            "--pred",
            str(tmp_path / "pred"),
            "--json",
            str(tmp_path / "r.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"J&F {100 * expected.jf:.2f}" in result.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["J&F"] == pytest.approx(expected.jf) and data["objects"] == 4


@pytest.mark.usefixtures("one_thread")
def test_eval_video_command_runs_the_model(tmp_path: Path):
    from video.reference import small_config

    from tijeras.catalog import REGISTRY
    from tijeras.hub.registry import ModelSpec

    make_davis(tmp_path, np.random.default_rng(5), frames=5)
    REGISTRY.add(ModelSpec(name="test-sam2-eval", family="sam2", config=small_config("2.0")))
    try:
        result = CliRunner().invoke(
            app,
            [
                "eval-video",
                str(tmp_path),
                "-m",
                "test-sam2-eval",
                "--out",
                str(tmp_path / "ours"),
                "--json",
                str(tmp_path / "r.json"),
            ],
        )
    finally:
        REGISTRY.remove("test-sam2-eval")
    assert result.exit_code == 0, result.output
    assert "tracked 10 frames" in result.output
    rescored = score_predictions(tmp_path, tmp_path / "ours")
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["J&F"] == pytest.approx(rescored.jf)
    first = np.array(Image.open(tmp_path / "ours" / "a" / "00000.png"))
    gt = np.array(Image.open(tmp_path / "Annotations" / "a" / "00000.png"))
    gt[gt == 255] = 0
    # the first frame's output is the input masks (resized to the model input and back)
    assert (first == gt).mean() > 0.8
