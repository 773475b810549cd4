"""Item: SAM 2's hole and speck clean-up (``max_hole_area`` / ``max_sprinkle_area``, and
everything mode's ``min_mask_region_area``, which Meta's generator hands to its predictor)
computes what Meta's post-processing computes with its CUDA extension present.

Meta's ``SAM2Transforms.postprocess_masks`` is run with ``get_connected_components`` given by
SciPy (what the CUDA kernel returns: 8-connected labels and component areas) in place of the
extension its CPU builds lack. Tolerances: logits within 1e-4 of the largest magnitude (the
same clean-up, then the same bilinear upscaling); everything mode matched candidate by
candidate (:func:`helpers.records.compare`).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.parity import assert_close, perturb
from helpers.records import KEEP_ALL, compare

from tijeras.models.sam2.holes import connected_components
from tijeras.sam2 import SAM2AutomaticMaskGenerator, SAM2ImagePredictor, build_sam2
from tijeras.sam2.transforms import SAM2Transforms

pytest.importorskip("sam2", reason="compares with Meta's sam2 package")
pytest.importorskip("hydra", reason="Meta's sam2 configs need hydra")
from sam2.utils import misc as meta_misc
from sam2.utils.transforms import SAM2Transforms as MetaTransforms

pytestmark = pytest.mark.parity


def reference_components(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Meta's ``get_connected_components`` contract, computed with SciPy."""
    from scipy import ndimage

    planes = mask.to(torch.uint8).cpu().numpy()[:, 0]
    labels = np.zeros(planes.shape, np.int32)
    areas = np.zeros(planes.shape, np.int32)
    for i, plane in enumerate(planes):
        lab, _ = ndimage.label(plane, structure=np.ones((3, 3), int))
        counts = np.bincount(lab.ravel())
        counts[0] = 0
        labels[i], areas[i] = lab, counts[lab]
    return torch.from_numpy(labels[:, None]), torch.from_numpy(areas[:, None])


@pytest.fixture
def meta_components(monkeypatch):
    monkeypatch.setattr(meta_misc, "get_connected_components", reference_components)


def speckled_logits(seed: int, shape=(2, 3, 256, 256)) -> torch.Tensor:
    """Smooth blobs with holes and specks of many sizes around the threshold 0."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.randn(shape[0] * shape[1], 1, 16, 16, generator=gen)
    smooth = torch.nn.functional.interpolate(coarse, shape[-2:], mode="bilinear")
    noise = torch.randn(smooth.shape, generator=gen) * 0.6
    return (smooth * 3 + noise).reshape(shape)


def test_connected_components_match_the_kernels_contract():
    mask = speckled_logits(0).flatten(0, 1)[:, None] > 0
    labels, areas = connected_components(mask)
    ref_labels, ref_areas = reference_components(mask)
    assert labels.dtype == ref_labels.dtype == torch.int32
    assert torch.equal(labels > 0, ref_labels > 0)
    assert torch.equal(areas, ref_areas)


@pytest.mark.parametrize(
    "hole, sprinkle, threshold", [(25, 25, 0.0), (100, 0, 0.0), (0, 40, 0.5), (8, 3, -1.0)]
)
def test_postprocess_matches_metas(meta_components, hole, sprinkle, threshold):
    logits = speckled_logits(1)
    ours = SAM2Transforms(1024, threshold, hole, sprinkle).postprocess_masks(logits, (300, 450))
    ref = MetaTransforms(1024, threshold, hole, sprinkle).postprocess_masks(logits, (300, 450))
    plain = MetaTransforms(1024, threshold).postprocess_masks(logits, (300, 450))
    assert not torch.allclose(ref, plain)  # the clean-up changed something
    assert_close(ours, ref, "cleaned logits")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import instantiate

    if not GlobalHydra.instance().is_initialized():
        initialize_config_module("sam2", version_base="1.2")
    torch.manual_seed(0)
    config = "configs/sam2.1/sam2.1_hiera_t.yaml"
    ref = instantiate(compose(config_name=config).model, _recursive_=True).eval()
    perturb(ref)
    path = tmp_path_factory.mktemp("sam2") / "sam2.1_hiera_tiny.pt"
    torch.save({"model": ref.state_dict()}, path)
    # Meta's model is built without its builder's post-processing overrides: so is ours.
    return ref, build_sam2(config, path, device="cpu", apply_postprocessing=False)


@pytest.fixture(scope="module")
def photo(truck_image):
    from PIL import Image

    return np.array(Image.fromarray(truck_image).resize((300, 200)))


@pytest.mark.slow
def test_predictor_with_hole_and_speck_areas_matches(models, photo, meta_components):
    from sam2.sam2_image_predictor import SAM2ImagePredictor as MetaPredictor

    ref, ours = models
    areas = {"max_hole_area": 60.0, "max_sprinkle_area": 60.0}
    rp, op, plain = MetaPredictor(ref, **areas), SAM2ImagePredictor(ours, **areas), None
    rp.set_image(photo)
    op.set_image(photo)
    prompt = {"point_coords": np.array([[150, 100]]), "point_labels": np.array([1])}
    r_logits, r_iou, r_low = rp.predict(**prompt, return_logits=True)
    o_logits, o_iou, o_low = op.predict(**prompt, return_logits=True)
    plain = MetaPredictor(ref)
    plain._features, plain._orig_hw, plain._is_image_set = rp._features, rp._orig_hw, True
    assert not np.allclose(plain.predict(**prompt, return_logits=True)[0], r_logits)
    assert_close(o_logits, r_logits, "cleaned logits")
    assert_close(o_iou, r_iou, "IoU")
    assert_close(o_low, r_low, "low-res logits (returned as decoded, not cleaned)")


@pytest.mark.slow
@pytest.mark.parametrize("m2m", [False, True], ids=["one-pass", "m2m"])
def test_everything_mode_with_min_mask_region_area_matches(models, photo, meta_components, m2m):
    from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator as MetaGenerator

    ref, ours = models
    options = dict(points_per_side=4, min_mask_region_area=60, use_m2m=m2m, **KEEP_ALL)
    expected = MetaGenerator(ref, **options).generate(photo)
    got = SAM2AutomaticMaskGenerator(ours, **options).generate(photo)
    compare(expected, got)
    native = ours.mask_generator(ours.everything_defaults.replace(**options))
    compare(expected, native.generate(photo))
