"""Everything mode against Meta's ``SamAutomaticMaskGenerator`` on perturbed random weights.

With ``pred_iou_thresh=0``, ``stability_score_thresh=0`` and ``box_nms_thresh=1.0`` every decoded
candidate is kept, so the comparison covers all of them (random weights give near-identical masks
that NMS collapses to one, and that the default thresholds reject). Masks are matched one to one
(Hungarian assignment on mask IoU): each pair must reach IoU >= 0.99 with scores equal within
1e-3. Each side encodes the photo once for all the tests (``encode_once``). The tests run on
``test-tiny`` in the default suite and on ViT-B in the slow one.
"""

from __future__ import annotations

import numpy as np
import pytest

sa = pytest.importorskip("segment_anything", reason="parity needs Meta's segment-anything package")

from helpers.parity import encode_once, perturbed_sam_pair, sam_model_params
from helpers.records import KEEP_ALL, NMS_ONLY, compare

from tijeras.automatic.generator import SamAutomaticMaskGenerator

pytestmark = pytest.mark.parity


@pytest.fixture(scope="module", params=sam_model_params())
def models(request, tmp_path_factory):
    ref, ours = perturbed_sam_pair(request.param, tmp_path_factory.mktemp("ckpt"))
    encode_once(ref.image_encoder)
    encode_once(ours.image_encoder)
    return ref, ours


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(dict(points_per_side=5, **KEEP_ALL), id="keep-all"),
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
        pytest.param(dict(points_per_side=5, **NMS_ONLY), id="nms"),
    ],
)
def test_generator_matches_meta(models, everything_photo, options):
    ref_model, our_model = models
    ref = sa.SamAutomaticMaskGenerator(ref_model, **options).generate(everything_photo)
    ours = SamAutomaticMaskGenerator(our_model, **options).generate(everything_photo)
    assert ref, "the options keep at least one mask"
    compare(ref, ours)


def test_output_modes_agree(models, everything_photo):
    _, our_model = models
    base = SamAutomaticMaskGenerator(our_model, points_per_side=4, **KEEP_ALL).generate(
        everything_photo
    )
    coco = SamAutomaticMaskGenerator(
        our_model, points_per_side=4, output_mode="coco_rle", **KEEP_ALL
    ).generate(everything_photo)
    from pycocotools import mask as mask_utils

    assert len(base) == len(coco)
    for b, c in zip(base, coco):
        assert isinstance(c["segmentation"]["counts"], str)
        np.testing.assert_array_equal(
            mask_utils.decode(c["segmentation"]).astype(bool), b["segmentation"]
        )
        assert b["area"] == int(b["segmentation"].sum())
