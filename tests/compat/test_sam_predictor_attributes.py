"""Item: user code subclasses ``SamPredictor`` without calling its ``__init__``, assigns its
attributes to load a stored embedding, reads ``orig_h``... and extends
``sam_model_registry``; all of it works as with Meta's package."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tijeras
from tijeras.compat.segment_anything import SamPredictor, sam_model_registry
from tijeras.compat.segment_anything.utils.transforms import ResizeLongestSide
from tijeras.errors import TijerasError, UnknownModelError

POINT = {"point_coords": np.array([[40, 30]]), "point_labels": np.array([1])}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return sam_model_registry["test-tiny"]()


@pytest.fixture(scope="module")
def image():
    return (np.random.default_rng(0).random((60, 90, 3)) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def reference(model, image):
    predictor = SamPredictor(model)
    predictor.set_image(image)
    return predictor, predictor.predict(**POINT)


class GeoStylePredictor(SamPredictor):
    """Sets its model and transform itself, never calling ``SamPredictor.__init__``."""

    def __init__(self, sam_model):
        self.model = sam_model
        self.transform = ResizeLongestSide(sam_model.image_encoder.img_size)

    def set_image(self, image):
        super().set_image(image)


def test_subclass_without_super_init(model, image, reference):
    predictor = GeoStylePredictor(model)
    assert predictor.is_image_set is False and predictor.features is None
    predictor.set_image(image)
    masks, scores, _ = predictor.predict(**POINT)
    np.testing.assert_array_equal(masks, reference[1][0])
    np.testing.assert_array_equal(scores, reference[1][1])


def test_stored_embedding_recipe(model, image, reference):
    source, (masks, scores, _) = reference
    predictor = SamPredictor(model)
    predictor.features = source.features.clone()
    predictor.original_size = image.shape[:2]
    predictor.input_size = source.input_size
    predictor.is_image_set = True
    got_masks, got_scores, _ = predictor.predict(**POINT)
    np.testing.assert_array_equal(got_masks, masks)
    np.testing.assert_allclose(got_scores, scores, rtol=1e-6)
    # A new assignment takes effect: another embedding gives other masks.
    predictor.features = torch.zeros_like(source.features)
    assert not np.allclose(predictor.predict(**POINT)[1], scores)
    assert predictor.get_image_embedding() is predictor.features


def test_sizes_attributes(model, image):
    predictor = SamPredictor(model)
    predictor.set_image(image)
    assert (predictor.orig_h, predictor.orig_w) == (60, 90)
    assert (predictor.input_h, predictor.input_w) == predictor.input_size == (683, 1024)
    predictor.reset_image()
    assert predictor.orig_h is predictor.input_w is predictor.features is None
    with pytest.raises(RuntimeError, match="An image must be set"):
        predictor.predict(**POINT)


def test_set_torch_image(model, image, reference):
    predictor = SamPredictor(model)
    resized = predictor.transform.apply_image(image)
    tensor = torch.as_tensor(resized).permute(2, 0, 1).contiguous()[None]
    predictor.set_torch_image(tensor, image.shape[:2])
    np.testing.assert_array_equal(predictor.predict(**POINT)[0], reference[1][0])


@pytest.mark.parametrize(
    "attributes, fragment",
    [
        ({"original_size": None}, "SamPredictor.original_size must be \\(height, width\\)"),
        ({"input_size": (0, 5)}, "SamPredictor.input_size must be"),
        ({"features": "embedding.pt"}, "SamPredictor.features must be the image embedding"),
        ({"features": torch.zeros(32, 64, 64)}, "must be 1 x C x h x w, got shape"),
    ],
)
def test_bad_assignments_are_named(model, reference, attributes, fragment):
    source = reference[0]
    predictor = SamPredictor(model)
    predictor.features = source.features
    predictor.original_size, predictor.input_size = source.original_size, source.input_size
    predictor.is_image_set = True
    for name, value in attributes.items():
        setattr(predictor, name, value)
    with pytest.raises(TijerasError, match=fragment):
        predictor.predict(**POINT)


def test_a_model_of_another_package_is_refused():
    with pytest.raises(TypeError, match="is not a tijeras model"):
        SamPredictor(torch.nn.Linear(2, 2))


def test_registry_is_a_dict_user_code_extends():
    calls = []

    def build_custom(checkpoint=None):
        calls.append(checkpoint)
        return "custom"

    registry = type(sam_model_registry)(sam_model_registry)
    registry["custom"] = build_custom
    registry.update({"custom_2": build_custom})
    assert registry["custom"]("w.pth") == registry["custom_2"]() == "custom"
    assert calls == ["w.pth", None]
    assert {"default", "vit_h", "vit_l", "vit_b", "vit_t", "custom"} <= set(registry)
    assert isinstance(registry["test-tiny"](), torch.nn.Module)  # tijeras' names still resolve
    with pytest.raises(UnknownModelError, match="unknown model type 'vit_x'; sam_model_registry"):
        registry["vit_x"]
    with pytest.raises(KeyError):
        registry["vit_x"]
    assert sam_model_registry is tijeras.sam_model_registry
