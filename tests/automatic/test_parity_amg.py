"""Everything mode against Meta's ``SamAutomaticMaskGenerator`` on perturbed random weights.

With ``pred_iou_thresh=0``, ``stability_score_thresh=0`` and ``box_nms_thresh=1.0`` every decoded
candidate is kept, so the comparison covers all of them (random weights give near-identical masks
that NMS would otherwise collapse to one or two). Masks are matched one to one (Hungarian
assignment on mask IoU): each pair must reach IoU >= 0.99 with scores equal within 1e-3.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

sa = pytest.importorskip("segment_anything", reason="parity needs Meta's segment-anything package")

from helpers.records import KEEP_ALL, compare

import tijeras
from tijeras.automatic.generator import SamAutomaticMaskGenerator

pytestmark = pytest.mark.parity


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    torch.manual_seed(0)
    ref = sa.sam_model_registry["vit_b"]()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.02)
    path = tmp_path_factory.mktemp("ckpt") / "perturbed_vit_b.pth"
    torch.save(ref.state_dict(), path)
    return ref, tijeras.sam_model_registry["vit_b"](checkpoint=str(path))


@pytest.fixture(scope="module")
def photo(truck_path):
    # A smaller copy of the photo keeps the full-resolution comparisons quick.
    return np.array(Image.open(truck_path).convert("RGB").resize((600, 400)))


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(dict(points_per_side=8, **KEEP_ALL), id="keep-all"),
        pytest.param(
            dict(points_per_side=4, crop_n_layers=1, **KEEP_ALL),
            id="crop-layers",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            dict(points_per_side=6, min_mask_region_area=200, **KEEP_ALL),
            id="min-region-area",
            marks=pytest.mark.slow,
        ),
        pytest.param({"points_per_side": 8}, id="default-nms"),
    ],
)
def test_generator_matches_meta(models, photo, options):
    ref_model, our_model = models
    ref = sa.SamAutomaticMaskGenerator(ref_model, **options).generate(photo)
    ours = SamAutomaticMaskGenerator(our_model, **options).generate(photo)
    compare(ref, ours)


def test_output_modes_agree(models, photo):
    _, our_model = models
    base = SamAutomaticMaskGenerator(our_model, points_per_side=4, **KEEP_ALL).generate(photo)
    coco = SamAutomaticMaskGenerator(
        our_model, points_per_side=4, output_mode="coco_rle", **KEEP_ALL
    ).generate(photo)
    from pycocotools import mask as mask_utils

    assert len(base) == len(coco)
    for b, c in zip(base, coco):
        assert isinstance(c["segmentation"]["counts"], str)
        np.testing.assert_array_equal(
            mask_utils.decode(c["segmentation"]).astype(bool), b["segmentation"]
        )
        assert b["area"] == int(b["segmentation"].sum())
