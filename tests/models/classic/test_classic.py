"""The classical backend ``classic``: GrabCut prompts and Felzenszwalb everything mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.data import data_path
from typer.testing import CliRunner

import tijeras
from tijeras.catalog import build_model, list_models
from tijeras.errors import PromptError
from tijeras.io import load_image

TRUCK_BOX = np.array([120.0, 280.0, 1710.0, 850.0])  # the pick-up truck
HUBCAP = np.array([[565.0, 740.0]])  # centre of the rear wheel's hubcap


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return tijeras.load_model("classic")


@pytest.fixture(scope="module")
def truck_predictor(model: torch.nn.Module, truck_image: np.ndarray) -> tijeras.Predictor:
    predictor = tijeras.Predictor(model)
    predictor.set_image(truck_image)
    return predictor


@pytest.fixture(scope="module")
def truck_box_prediction(truck_predictor: tijeras.Predictor) -> tijeras.MaskPrediction:
    return truck_predictor.predict(box=TRUCK_BOX, multimask_output=False)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.logical_and(a, b).sum() / np.logical_or(a, b).sum())


def test_registered_weightless_model() -> None:
    assert "classic" in list_models()
    model = build_model("classic", dtype=torch.bfloat16)
    assert list(model.parameters()) == [] and model.state_dict() == {}
    assert model.dtype == model.encoder_dtype == torch.bfloat16
    assert model.input_spec.mask_input_size == model.input_spec.embedding_grid == (512, 512)
    assert not model.training


def test_box_covers_the_truck(truck_box_prediction: tijeras.MaskPrediction) -> None:
    masks, scores = truck_box_prediction.masks, truck_box_prediction.scores
    assert masks.shape == (1, 1200, 1800) and masks.dtype == bool
    assert 0.0 < scores[0] <= 1.0
    mask = masks[0]
    x0, y0, x1, y1 = TRUCK_BOX.astype(int)
    inside = mask[y0:y1, x0:x1].sum()
    assert inside / ((x1 - x0) * (y1 - y0)) > 0.55  # the truck fills most of its box
    assert mask.sum() - inside < 0.01 * mask.sum()  # nothing outside the box
    assert mask[500, 1000] and mask[370, 760]  # door, rear window
    assert not mask[150, 1300] and not mask[1050, 900]  # red wall, road


def test_click_candidates_on_hubcap(truck_predictor: tijeras.Predictor) -> None:
    result = truck_predictor.predict(HUBCAP, np.array([1]))
    assert result.masks.shape == (3, 1200, 1800) and result.scores.shape == (3,)
    assert np.all((result.scores >= 0) & (result.scores <= 1))
    areas = result.masks.reshape(3, -1).sum(1)
    assert areas[0] <= areas[1] <= areas[2]  # growing windows: part to whole
    hubcap = result.masks[0]
    assert hubcap[740, 565]
    ys, xs = np.nonzero(hubcap)
    assert xs.min() > 470 and xs.max() < 660 and ys.min() > 650 and ys.max() < 830
    assert 0.002 < hubcap.mean() < 0.012


def test_click_on_orange_matches_ground_truth(model: torch.nn.Module) -> None:
    folder = data_path("coco_mval_subset")
    image = load_image(folder / "images" / "orange00_000000050679.jpg")
    truth = load_image(folder / "masks" / "orange00_000000050679.png")[..., 0] > 127
    ys, xs = np.nonzero(truth)
    centre = np.array([[xs.mean(), ys.mean()]])
    predictor = tijeras.Predictor(model)
    predictor.set_image(image)
    mask, score = predictor.predict(centre, np.array([1])).best()
    assert score > 0 and _iou(mask, truth) > 0.85


def test_negative_point_removes_the_wheel(
    truck_predictor: tijeras.Predictor, truck_box_prediction: tijeras.MaskPrediction
) -> None:
    around = (slice(735, 746), slice(560, 571))  # 11 x 11 pixels around the click
    assert truck_box_prediction.masks[0][around].all()
    result = truck_predictor.predict(HUBCAP, np.array([0]), TRUCK_BOX)
    for mask in result.masks:  # every candidate, hole-filled ones included
        assert not mask[around].any()
        assert mask[500, 1000]


def test_mask_input_round_trip(
    truck_predictor: tijeras.Predictor, truck_box_prediction: tijeras.MaskPrediction
) -> None:
    logits = truck_box_prediction.low_res_logits
    assert logits.shape == (1, 512, 512)
    again = truck_predictor.predict(mask_input=logits, multimask_output=False, return_logits=True)
    assert again.masks.dtype == np.float32
    assert _iou(again.masks[0] > 0, truck_box_prediction.masks[0]) > 0.85
    # the logits threshold at 0 to the masks
    thresholded = truck_predictor.predict(mask_input=logits, multimask_output=False).masks
    assert np.array_equal(thresholded[0], again.masks[0] > 0)


def test_batch_of_prompts_equals_single_prompts(
    truck_predictor: tijeras.Predictor, truck_box_prediction: tijeras.MaskPrediction
) -> None:
    wheel_box = np.array([400.0, 600.0, 720.0, 880.0])
    batch = truck_predictor.predict(box=np.stack([TRUCK_BOX, wheel_box]), multimask_output=False)
    assert batch.masks.shape == (2, 1, 1200, 1800) and batch.scores.shape == (2, 1)
    assert np.array_equal(batch.masks[0], truck_box_prediction.masks)
    single = truck_predictor.predict(box=wheel_box, multimask_output=False)
    assert np.array_equal(batch.masks[1], single.masks)


def test_bad_prompts_get_the_shared_messages(truck_predictor: tijeras.Predictor) -> None:
    cases = [
        ({"point_coords": np.array([[1900.0, 10.0]]), "point_labels": np.array([1])}, "outside"),
        ({"box": np.array([500.0, 500.0, 100.0, 900.0])}, "x1 < x0"),
        ({"mask_input": np.zeros((1, 256, 256))}, "1 x 512 x 512"),
        ({"point_coords": np.array([[10.0, 10.0]])}, "point_labels must be given"),
    ]
    for kwargs, words in cases:
        with pytest.raises(PromptError, match=words):
            truck_predictor.predict(**kwargs)
    with pytest.raises(PromptError, match="no prompt given"):
        truck_predictor.predict()


def test_embedding_file_round_trip(
    model: torch.nn.Module, truck_predictor: tijeras.Predictor, tmp_path: Path
) -> None:
    path = truck_predictor.save_embedding(tmp_path / "truck.safetensors")
    other = tijeras.Predictor(model)
    other.load_embedding(path)
    result = other.predict(box=np.array([400.0, 600.0, 720.0, 880.0]), multimask_output=False)
    expected = truck_predictor.predict(box=np.array([400.0, 600.0, 720.0, 880.0]))
    assert np.array_equal(result.masks[0], expected.masks[np.argmax(expected.scores)])


@pytest.fixture(scope="module")
def dog_image() -> np.ndarray:
    return load_image(data_path("sam_demo_images", "images", "dog.jpg"))


def test_everything_records_in_every_output_mode(
    model: torch.nn.Module, dog_image: np.ndarray
) -> None:
    from pycocotools import mask as mask_utils

    from tijeras.automatic import mask_generator_for

    h, w = dog_image.shape[:2]
    every = mask_generator_for(model).generate(dog_image)
    regions = np.stack([r["segmentation"] for r in every])
    assert np.all(regions.sum(0) == 1)  # a partition of the image
    binary = mask_generator_for(model, min_mask_region_area=200).generate(dog_image)
    assert 10 < len(binary) < len(every)
    masks = np.stack([r["segmentation"] for r in binary])
    assert masks.shape[1:] == (h, w) and masks.dtype == bool
    for record, mask in zip(binary, masks):
        ys, xs = np.nonzero(mask)
        assert record["area"] == mask.sum() >= 200
        assert record["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()]
        assert 0 <= record["predicted_iou"] <= 1 and 0 <= record["stability_score"] <= 1
        assert record["crop_box"] == [0, 0, w, h]
        x, y = record["point_coords"][0]
        assert mask[round(y), round(x)]
    for mode in ("coco_rle", "uncompressed_rle"):
        records = mask_generator_for(model, min_mask_region_area=200, output_mode=mode).generate(
            dog_image
        )
        assert len(records) == len(binary)
        for record, mask in zip(records, masks):
            rle = record["segmentation"]
            if mode == "uncompressed_rle":
                assert isinstance(rle["counts"], list)
                rle = mask_utils.frPyObjects(rle, h, w)
            else:
                assert isinstance(rle["counts"], str)
                rle = {"size": rle["size"], "counts": rle["counts"].encode()}
            assert np.array_equal(mask_utils.decode(rle).astype(bool), mask)


def test_everything_options(model: torch.nn.Module, dog_image: np.ndarray) -> None:
    from tijeras.automatic import mask_generator_for
    from tijeras.automatic.generator import SamAutomaticMaskGenerator

    small = dog_image[::2, ::2].copy()
    coarse = mask_generator_for(model, points_per_side=8).generate_records(small)
    fine = mask_generator_for(model, points_per_side=32).generate_records(small)
    assert 0 < len(coarse) < len(fine)  # points_per_side sets the granularity
    sam_defaults = {  # every SAM keyword is accepted
        "pred_iou_thresh": 0.88,
        "stability_score_thresh": 0.95,
        "crop_n_layers": 1,
        "box_nms_thresh": 0.7,
        "points_per_batch": 64,
    }
    assert not isinstance(mask_generator_for(model, **sam_defaults), SamAutomaticMaskGenerator)
    from tijeras.automatic.tiling import generate_tiled

    tiled = generate_tiled(mask_generator_for(model), small, tile_size=200, overlap=50)
    assert tiled and all(r["segmentation"].shape == small.shape[:2] for r in tiled)
    with pytest.raises(TypeError, match="points_per_sid"):
        mask_generator_for(model, points_per_sid=8)
    with pytest.raises(ValueError, match="output_mode"):
        mask_generator_for(model, output_mode="png")


def test_cli_segment_and_everything(truck_path: Path, tmp_path: Path) -> None:
    from tijeras.cli.main import app

    runner = CliRunner()
    out = tmp_path / "mask.png"
    result = runner.invoke(
        app,
        ["segment", str(truck_path), "--model", "classic", "--point", "565,740", "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "random weights" not in result.output
    mask = load_image(out)[..., 0] > 127
    assert mask.shape == (1200, 1800) and mask[740, 565]

    result = runner.invoke(
        app,
        ["everything", str(truck_path), "--model", "classic", "--out", str(tmp_path / "all")],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "all" / "truck.json").is_file()
    assert (tmp_path / "all" / "truck_overlay.png").is_file()

    result = runner.invoke(
        app, ["segment", str(truck_path), "--model", "classic", "--box", "10,10,5,20"]
    )
    assert result.exit_code == 2 and "x1 < x0" in result.output
