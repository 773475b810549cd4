"""Evaluation: the click protocol on synthetic masks, metrics, datasets and the runner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers.data import data_path
from PIL import Image
from scipy.ndimage import distance_transform_edt

from tijeras.errors import DatasetError
from tijeras.evaluate.clicks import Clicker, distance_to_boundary, next_click
from tijeras.evaluate.dataset import load_coco, open_dataset, split_samples
from tijeras.evaluate.metrics import iou, miou_curve, number_of_clicks, summarize
from tijeras.evaluate.runner import evaluate, result_from_json, simulate_clicks
from tijeras.types import MaskPrediction


def _edt(region: np.ndarray) -> np.ndarray:
    """Reference: exact EDT with the image border as boundary (scipy)."""
    return distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]


def _blob(h: int = 60, w: int = 80) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return ((yy - 25) / 18) ** 2 + ((xx - 30) / 22) ** 2 <= 1


# ----------------------------------------------------------------------------- clicks


def test_distance_matches_scipy_and_counts_the_border() -> None:
    mask = _blob()
    mask[:, :5] = True  # touches the left border
    np.testing.assert_allclose(distance_to_boundary(mask), _edt(mask), atol=1e-4)
    assert distance_to_boundary(np.ones((5, 5), bool))[0, 0] == 1.0


def test_first_click_is_the_argmax_of_the_distance_transform() -> None:
    gt = _blob()
    click = next_click(gt, np.zeros_like(gt))
    dist = _edt(gt)
    assert click is not None and click.positive
    assert dist[click.y, click.x] == pytest.approx(dist.max(), abs=1e-4)
    assert (click.y, click.x) == np.unravel_index(np.argmax(dist), dist.shape)


def test_next_click_goes_to_the_larger_error_region() -> None:
    gt = np.zeros((60, 80), bool)
    gt[10:50, 10:40] = True
    # Missed a 40 x 10 strip of the object (false negative), covered a 6 x 6 background patch.
    pred = gt.copy()
    pred[10:50, 30:40] = False
    pred[5:11, 60:66] = True
    click = next_click(gt, pred)
    fn = gt & ~pred
    assert click.positive and fn[click.y, click.x]
    assert _edt(fn)[click.y, click.x] == pytest.approx(_edt(fn).max(), abs=1e-4)
    # Now the false positive is the deeper error: a background click inside it.
    pred2 = gt.copy()
    pred2[20:50, 50:78] = True
    pred2[10:12, 10:12] = False
    click2 = next_click(gt, pred2)
    fp = ~gt & pred2
    assert not click2.positive and fp[click2.y, click2.x]
    assert click2.label == 0


def test_ignored_pixels_are_never_clicked_nor_counted() -> None:
    gt = np.zeros((40, 40), bool)
    gt[5:35, 5:35] = True
    ignore = np.zeros_like(gt)
    ignore[10:30, 10:30] = True  # the object's interior is ignored
    click = next_click(gt, np.zeros_like(gt), ignore)
    assert not ignore[click.y, click.x] and gt[click.y, click.x]
    assert _edt(gt & ~ignore)[click.y, click.x] == pytest.approx(_edt(gt & ~ignore).max())
    pred = gt & ~ignore  # right everywhere except in the ignored square
    assert iou(gt, pred, ignore) == 1.0
    assert iou(gt, pred) == pytest.approx(pred.sum() / gt.sum())
    assert next_click(gt, pred, ignore) is None


def test_clicker_never_repeats_a_pixel_and_builds_prompts() -> None:
    gt = _blob()
    clicker = Clicker(gt)
    first = clicker.click(None)
    second = clicker.click(np.zeros_like(gt))  # same prediction: the same pixel is excluded
    assert (first.x, first.y) != (second.x, second.y) and second.positive
    coords, labels = clicker.prompt()
    assert coords.shape == (2, 2) and labels.tolist() == [1, 1]
    assert coords[0].tolist() == [first.x, first.y]


# ----------------------------------------------------------------------------- metrics


def test_noc_and_summary_by_hand() -> None:
    curves = [[0.5, 0.86, 0.91], [0.95, 0.95, 0.95], [0.2, 0.3, 0.4]]
    assert number_of_clicks(curves[0], 0.85, 3) == 2
    assert number_of_clicks(curves[0], 0.90, 3) == 3
    assert number_of_clicks(curves[2], 0.85, 3) == 3  # never reached: the budget
    s = summarize(curves, [0.7, 0.8, 0.9], max_clicks=3)
    assert s["noc@85"] == pytest.approx((2 + 1 + 3) / 3)
    assert s["noc@90"] == pytest.approx((3 + 1 + 3) / 3)
    assert s["failed@90"] == 1 and s["failed@85"] == 1
    assert s["miou@1"] == pytest.approx((0.5 + 0.95 + 0.2) / 3)
    assert s["miou@3"] == pytest.approx((0.91 + 0.95 + 0.4) / 3)
    assert "miou@5" not in s
    assert s["box_miou"] == pytest.approx(0.8)
    # A run that stopped early (nothing left to correct) keeps its last IoU.
    assert miou_curve([[1.0]], 3) == [1.0, 1.0, 1.0]


# ----------------------------------------------------------------------------- runner


class OraclePredictor:
    """Returns a fixed sequence of masks and records what it was asked."""

    def __init__(self, masks: list[np.ndarray]) -> None:
        self.masks = masks
        self.calls: list[dict] = []

    def predict(self, point_coords=None, point_labels=None, box=None, mask_input=None,
                multimask_output=True):  # fmt: skip
        self.calls.append(
            {"n": 0 if point_coords is None else len(point_coords), "mask": mask_input,
             "multi": multimask_output, "box": box}
        )  # fmt: skip
        mask = self.masks[min(len(self.calls) - 1, len(self.masks) - 1)]
        if multimask_output:  # candidate 1 is the best scored one
            masks = np.stack([np.zeros_like(mask), mask, np.zeros_like(mask)])
            scores = np.array([0.1, 0.9, 0.2])
        else:
            masks, scores = mask[None], np.array([0.5])
        logits = np.full((len(masks), 256, 256), float(len(self.calls)), np.float32)
        return MaskPrediction(masks, scores, logits)


def test_click_protocol_through_a_predictor() -> None:
    gt = _blob()
    half = gt.copy()
    half[:, 30:] = False
    pred = OraclePredictor([half, gt])
    ious, clicks = simulate_clicks(pred, gt, None, max_clicks=5)
    assert ious[0] == pytest.approx(half.sum() / gt.sum()) and ious[1] == 1.0
    assert len(ious) == 2  # nothing left to correct after the second click
    first, second = pred.calls
    assert first["multi"] and first["mask"] is None and first["n"] == 1
    assert not second["multi"] and second["n"] == 2
    assert second["mask"].shape == (1, 256, 256) and second["mask"][0, 0, 0] == 1.0
    assert (
        clicks[1].positive and gt[clicks[1].y, clicks[1].x] and not half[clicks[1].y, clicks[1].x]
    )


def _folder(root: Path, masks: dict[str, np.ndarray], size=(40, 50)) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for name, mask in masks.items():
        Image.fromarray(np.full((*size, 3), 128, np.uint8)).save(root / "images" / f"{name}.jpg")
        if mask is not None:
            Image.fromarray(mask.astype(np.uint8) * 255).save(root / "masks" / f"{name}.png")
    return root


def test_dataset_errors_name_the_file(tmp_path: Path) -> None:
    ok = np.zeros((40, 50), bool)
    ok[10:20, 10:20] = True
    with pytest.raises(DatasetError, match="not found"):
        open_dataset(tmp_path / "missing")
    with pytest.raises(DatasetError, match=r"no mask .*b\.png"):
        open_dataset(_folder(tmp_path / "a", {"a": ok, "b": None}))
    with pytest.raises(DatasetError, match=r"c\.png.*50x40"):
        open_dataset(_folder(tmp_path / "c", {"c": np.ones((30, 30), bool)}))
    with pytest.raises(DatasetError, match=r"d\.png.*empty"):
        open_dataset(_folder(tmp_path / "d", {"d": np.zeros((40, 50), bool)}))
    samples = open_dataset(_folder(tmp_path / "e", {"e": ok, "f": ok}))
    assert [s.name for s in samples] == ["e", "f"]
    train, val = split_samples(samples, 0.5, seed=0)
    assert len(train) == len(val) == 1 and train[0].image_path != val[0].image_path


def test_ignore_folder_is_used(tmp_path: Path) -> None:
    ok = np.zeros((40, 50), bool)
    ok[10:20, 10:20] = True
    root = _folder(tmp_path / "g", {"g": ok})
    (root / "ignore").mkdir()
    ignore = np.zeros((40, 50), np.uint8)
    ignore[0:5] = 255
    Image.fromarray(ignore).save(root / "ignore" / "g.png")
    _, mask, ig = open_dataset(root)[0].load()
    assert mask.sum() == 100 and ig.sum() == 5 * 50


def test_coco_dataset(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(tmp_path / "images" / "x.png")
    coco = {
        "images": [{"id": 1, "file_name": "x.png", "height": 40, "width": 50}],
        "annotations": [
            {"id": 7, "image_id": 1, "iscrowd": 0, "area": 200.0,
             "segmentation": [[10, 10, 30, 10, 30, 20, 10, 20]]},
            {"id": 8, "image_id": 1, "iscrowd": 1, "area": 200.0, "segmentation": [[0, 0, 5, 0, 5, 5]]},
        ],
    }  # fmt: skip
    path = tmp_path / "inst.json"
    path.write_text(json.dumps(coco))
    samples = load_coco(path)
    assert [s.name for s in samples] == ["x#7"]
    mask = samples[0].load_mask((40, 50))
    assert mask[15, 20] and not mask[5, 5] and 150 < mask.sum() < 260


def test_evaluate_test_tiny_on_coco_mval_subset() -> None:
    import torch

    import tijeras

    samples = open_dataset(data_path("coco_mval_subset"))[:2]
    torch.manual_seed(0)
    predictor = tijeras.Predictor(tijeras.load_model("test-tiny"))
    result = evaluate(predictor, samples, max_clicks=3, progress=False)
    s = result.summary
    assert s["objects"] == 2 and len(s["miou_curve"]) == 3
    assert all(1 <= len(o.ious) <= 3 and 0 <= o.box_iou <= 1 for o in result.objects)
    assert 1.0 <= s["noc@85"] <= 3.0
    again = result_from_json(json.loads(json.dumps(result.to_json())))
    assert again.objects[0].clicks == result.objects[0].clicks
