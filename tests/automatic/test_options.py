"""Everything-mode options: one record per family feeds the generators, the CLI and the server;
records for any number of masks."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from tijeras.automatic import mask_generator_for
from tijeras.automatic.generator import AutoMaskGenerator, SamAutomaticMaskGenerator
from tijeras.automatic.options import SAM2_EVERYTHING, SAM_EVERYTHING, EverythingOptions
from tijeras.catalog import build_model, get_spec
from tijeras.io.rle import decode_coco_rle
from tijeras.sam2 import SAM2AutomaticMaskGenerator


def _meta_defaults(cls: type) -> dict[str, object]:
    return {
        name: p.default
        for name, p in inspect.signature(cls).parameters.items()
        if p.default is not inspect.Parameter.empty and name in SAM_EVERYTHING.as_dict()
    }


def test_meta_signatures_take_their_defaults_from_the_records() -> None:
    for cls, record in (
        (SamAutomaticMaskGenerator, SAM_EVERYTHING),
        (SAM2AutomaticMaskGenerator, SAM2_EVERYTHING),
    ):
        defaults = _meta_defaults(cls)
        assert defaults and all(record.as_dict()[k] == v for k, v in defaults.items()), cls
    assert SAM_EVERYTHING.pred_iou_thresh == 0.88 and SAM2_EVERYTHING.pred_iou_thresh == 0.8
    assert get_spec("sam-vit-b").everything == SAM_EVERYTHING
    assert get_spec("sam2.1-hiera-large").everything == SAM2_EVERYTHING


def test_options_check_names_and_bounds() -> None:
    with pytest.raises(TypeError, match="unknown everything-mode option: points_per_sid"):
        SAM_EVERYTHING.replace(points_per_sid=8)
    with pytest.raises(ValueError, match="pred_iou_thresh must be at most 1"):
        SAM_EVERYTHING.replace(pred_iou_thresh=1.5)
    with pytest.raises(ValueError, match="leaves no points on crop layer 2"):
        EverythingOptions(points_per_side=3, crop_n_layers=2, crop_n_points_downscale_factor=2)
    assert SAM_EVERYTHING.replace(points_per_side=None) == SAM_EVERYTHING  # None: keep


def test_generators_take_the_models_defaults() -> None:
    torch.manual_seed(0)
    sam = build_model("test-tiny")
    assert AutoMaskGenerator(sam).options == SAM_EVERYTHING
    assert mask_generator_for(sam, points_per_side=4).options == SAM_EVERYTHING.replace(
        points_per_side=4
    )
    with pytest.raises(TypeError, match="unexpected keyword argument 'use_mm2'"):
        SAM2AutomaticMaskGenerator(sam, use_mm2=True)


def test_more_than_255_masks() -> None:
    """pycocotools' ``area`` of a list stores its length in a uint8: 256 masks and more raised
    OverflowError. Every output mode gives every mask, with its true area."""
    torch.manual_seed(0)
    model = build_model("test-tiny")
    y, x = np.mgrid[0:64, 0:96]
    image = np.stack([x * 2 % 256, y * 3 % 256, (x + y) % 256], axis=-1).astype(np.uint8)
    keep_all = {"pred_iou_thresh": 0, "stability_score_thresh": 0, "box_nms_thresh": 1.0}
    generator = mask_generator_for(model, points_per_side=12, output_mode="coco_rle", **keep_all)
    records = generator.generate(image)
    assert len(records) >= 300
    for record in records[::37]:
        assert record["area"] == int(decode_coco_rle(record["segmentation"]).sum())
    binary = mask_generator_for(model, points_per_side=12, **keep_all).generate(image)
    assert [r["area"] for r in binary] == [int(r["segmentation"].sum()) for r in binary]
