"""Meta's SAM 2 API on tijeras: the same prompt validation as every other path, and no keyword
argument dropped silently."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tijeras.errors import PromptError, TijerasError
from tijeras.sam2 import SAM2AutomaticMaskGenerator, SAM2ImagePredictor, build_sam2


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", None, device="cpu")


@pytest.fixture(scope="module")
def predictor(model):
    predictor = SAM2ImagePredictor(model)
    predictor.set_image(np.zeros((120, 200, 3), np.uint8))
    return predictor


@pytest.mark.parametrize(
    ("prompt", "fragment"),
    [
        ({"point_coords": [[250.0, 50.0]], "point_labels": [1]}, "point (250, 50) is outside"),
        ({"point_coords": [[-3.0, 50.0]], "point_labels": [1]}, "point (-3, 50) is outside"),
        ({"box": [10.0, 10.0, 300.0, 100.0]}, "box (10, 10, 300, 100) is outside"),
        ({"point_coords": [[10.0, 50.0]], "point_labels": [7]}, "point label 7"),
        ({"point_coords": [[10.0, np.nan]], "point_labels": [1]}, "NaN"),
    ],
)
def test_prompts_are_checked_like_everywhere_else(predictor, prompt, fragment) -> None:
    with pytest.raises(PromptError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        predictor.predict(**prompt)


def test_normalised_coordinates_are_checked_too(predictor) -> None:
    with pytest.raises(PromptError, match="outside the 200x120 image"):
        predictor.predict(point_coords=[[1.5, 0.5]], point_labels=[1], normalize_coords=False)
    masks, _, _ = predictor.predict(
        point_coords=[[0.5, 0.5]], point_labels=[1], normalize_coords=False
    )
    assert masks.shape == (3, 120, 200)


def test_unknown_keyword_arguments_are_errors(model) -> None:
    with pytest.raises(TypeError, match="max_hole_aera"):
        SAM2ImagePredictor(model, max_hole_aera=10)
    with pytest.raises(TypeError, match="points_per_sid"):
        SAM2AutomaticMaskGenerator(model, points_per_sid=8)
    with pytest.raises(TypeError, match="apply_postprocesing"):
        build_sam2("sam2.1-hiera-tiny", None, device="cpu", apply_postprocesing=False)


def test_cuda_without_a_gpu_is_an_error_naming_it() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(TijerasError, match="'cuda': CUDA is not available"):
        build_sam2("sam2.1-hiera-tiny", None)  # Meta's default device is "cuda"
