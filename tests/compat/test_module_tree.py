"""Item: the drop-in packages mirror the official module trees, importable under the official
names (code imports ``segment_anything.utils.transforms``, ``sam2.build_sam`` and so on)."""

from __future__ import annotations

import importlib
import sys

import pytest

import tijeras
import tijeras.compat
from tijeras.errors import TijerasError

SEGMENT_ANYTHING = {
    "": [
        "SamAutomaticMaskGenerator",
        "SamPredictor",
        "build_sam",
        "build_sam_vit_b",
        "build_sam_vit_h",
        "build_sam_vit_l",
        "sam_model_registry",
    ],
    ".build_sam": [
        "build_sam",
        "build_sam_vit_b",
        "build_sam_vit_h",
        "build_sam_vit_l",
        "sam_model_registry",
    ],
    ".predictor": ["SamPredictor"],
    ".automatic_mask_generator": ["SamAutomaticMaskGenerator"],
    ".modeling": ["Sam", "ImageEncoderViT", "MaskDecoder", "PromptEncoder", "TwoWayTransformer"],
    ".modeling.sam": ["Sam"],
    ".utils.transforms": ["ResizeLongestSide"],
    ".utils.amg": [
        "MaskData",
        "area_from_rle",
        "batch_iterator",
        "batched_mask_to_box",
        "box_xyxy_to_xywh",
        "build_all_layer_point_grids",
        "build_point_grid",
        "calculate_stability_score",
        "coco_encode_rle",
        "generate_crop_boxes",
        "is_box_near_crop_edge",
        "mask_to_rle_pytorch",
        "remove_small_regions",
        "rle_to_mask",
        "uncrop_boxes_xyxy",
        "uncrop_masks",
        "uncrop_points",
    ],
}
SAM2 = {
    ".build_sam": [
        "build_sam2",
        "build_sam2_hf",
        "build_sam2_video_predictor",
        "build_sam2_video_predictor_hf",
    ],
    ".sam2_image_predictor": ["SAM2ImagePredictor"],
    ".automatic_mask_generator": ["SAM2AutomaticMaskGenerator"],
    ".sam2_video_predictor": ["SAM2VideoPredictor"],
    ".modeling.sam2_base": ["SAM2Base"],
    ".utils.transforms": ["SAM2Transforms"],
    ".utils.amg": SEGMENT_ANYTHING[".utils.amg"],
    ".utils.misc": ["get_connected_components"],
}


@pytest.mark.parametrize(
    "root, tree", [("segment_anything", SEGMENT_ANYTHING), ("sam2", SAM2)], ids=["sa", "sam2"]
)
def test_every_official_module_and_name_is_there(root, tree):
    for suffix, names in tree.items():
        module = importlib.import_module(f"tijeras.compat.{root}{suffix}")
        missing = [n for n in names if getattr(module, n, None) is None]
        assert not missing, f"{root}{suffix} lacks {missing}"


@pytest.mark.parametrize("root, tree", [("segment_anything", SEGMENT_ANYTHING), ("sam2", SAM2)])
def test_names_match_the_official_packages(root, tree):
    """Each name listed is also in the official module (the list is not made up)."""
    if root == "sam2":
        pytest.importorskip("hydra")
    official = pytest.importorskip(root)
    for suffix, names in tree.items():
        if suffix == ".utils.misc" or (root == "segment_anything" and suffix == ""):
            names = [n for n in names if n != "build_sam_vit_t"]
        module = importlib.import_module(f"{official.__name__}{suffix}")
        missing = [n for n in names if not hasattr(module, n)]
        assert not missing, f"the official {root}{suffix} has no {missing}"


def test_top_level_names_of_tijeras():
    from tijeras import ResizeLongestSide, SamAutomaticMaskGenerator, SamPredictor
    from tijeras.compat import segment_anything as sa

    assert tijeras.sam_model_registry is sa.sam_model_registry
    assert (SamPredictor, ResizeLongestSide) == (sa.SamPredictor, sa.ResizeLongestSide)
    assert SamAutomaticMaskGenerator is sa.SamAutomaticMaskGenerator


@pytest.fixture
def clean_official_names():
    """Take the official names out of ``sys.modules`` for a test and put them back after."""
    roots = ("segment_anything", "sam2")
    saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] in roots}
    for k in saved:
        del sys.modules[k]
    yield
    for k in [k for k in sys.modules if k.split(".")[0] in roots]:
        del sys.modules[k]
    sys.modules.update(saved)


def test_install_aliases_binds_every_submodule(clean_official_names):
    names = tijeras.compat.install_aliases()
    assert "segment_anything.utils.transforms" in names and "sam2.utils.amg" in names
    import sam2.build_sam
    import segment_anything.utils.transforms
    from segment_anything import SamPredictor

    from tijeras.compat import sam_transforms
    from tijeras.sam2 import build

    assert segment_anything.utils.transforms.ResizeLongestSide is sam_transforms.ResizeLongestSide
    assert SamPredictor is tijeras.SamPredictor
    assert sam2.build_sam.build_sam2 is build.build_sam2
    assert tijeras.compat.install_aliases("sam2")  # again: nothing to refuse


def test_a_manual_alias_of_the_top_level_gives_the_same_classes(clean_official_names):
    """``sys.modules["segment_anything"] = ...`` alone (as some code does) is enough: the
    submodules load under the official names, re-exporting the same objects."""
    sys.modules["segment_anything"] = importlib.import_module("tijeras.compat.segment_anything")
    from segment_anything.automatic_mask_generator import SamAutomaticMaskGenerator
    from segment_anything.utils.amg import rle_to_mask
    from segment_anything.utils.transforms import ResizeLongestSide

    from tijeras.compat import amg

    assert ResizeLongestSide is tijeras.ResizeLongestSide
    assert SamAutomaticMaskGenerator is tijeras.SamAutomaticMaskGenerator
    assert rle_to_mask is amg.rle_to_mask


def test_install_aliases_refuses_unknown_names_and_an_imported_official_package(
    clean_official_names,
):
    with pytest.raises(TijerasError, match="no drop-in package for 'segment_anything_2'"):
        tijeras.compat.install_aliases("segment_anything_2")
    sys.modules["sam2"] = type(sys)("sam2")
    with pytest.raises(TijerasError, match="'sam2' is already imported"):
        tijeras.compat.install_aliases("sam2")
