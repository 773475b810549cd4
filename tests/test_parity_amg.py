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
scipy_opt = pytest.importorskip("scipy.optimize", reason="matching needs scipy")

import tijeras
from tijeras.automatic.generator import SamAutomaticMaskGenerator

pytestmark = pytest.mark.parity
KEEP_ALL = dict(pred_iou_thresh=0.0, stability_score_thresh=0.0, box_nms_thresh=1.0)


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


def mask_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    fa = a.reshape(len(a), -1).astype(np.float32)
    fb = b.reshape(len(b), -1).astype(np.float32)
    inter = fa @ fb.T
    union = fa.sum(1)[:, None] + fb.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def compare(ref_records, our_records, min_iou=0.99, score_tol=1e-3):
    assert len(our_records) == len(ref_records), (len(our_records), len(ref_records))
    if not ref_records:
        return
    ra = np.stack([r["segmentation"] for r in ref_records])
    oa = np.stack([r["segmentation"] for r in our_records])
    ious = mask_iou_matrix(oa, ra)
    # prefer pairs with equal prompts and scores: they are the same candidate
    rp = np.array([r["point_coords"][0] for r in ref_records])
    op = np.array([r["point_coords"][0] for r in our_records])
    rs = np.array([r["predicted_iou"] for r in ref_records])
    os_ = np.array([r["predicted_iou"] for r in our_records])
    same_point = np.abs(op[:, None, :] - rp[None, :, :]).max(-1) < 1e-6
    cost = -ious - same_point - (np.abs(os_[:, None] - rs[None, :]) < score_tol)
    rows, cols = scipy_opt.linear_sum_assignment(cost)
    worst = ious[rows, cols].min()
    assert worst >= min_iou, f"a matched pair has mask IoU {worst:.4f}"
    for i, j in zip(rows, cols):
        o, r = our_records[i], ref_records[j]
        assert abs(o["predicted_iou"] - r["predicted_iou"]) <= score_tol
        assert abs(o["stability_score"] - r["stability_score"]) <= score_tol
        assert o["crop_box"] == r["crop_box"]
        assert abs(o["area"] - r["area"]) <= 0.01 * max(r["area"], 100)


@pytest.mark.parametrize(
    "options",
    [
        dict(points_per_side=8, **KEEP_ALL),
        dict(points_per_side=4, crop_n_layers=1, **KEEP_ALL),
        dict(points_per_side=6, min_mask_region_area=200, **KEEP_ALL),
        dict(points_per_side=8),
    ],
    ids=["keep-all", "crop-layers", "min-region-area", "default-nms"],
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
