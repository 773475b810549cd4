"""Comparing everything-mode records of two generators (the official one and tijeras')."""

from __future__ import annotations

import numpy as np
import scipy.optimize as scipy_opt

KEEP_ALL = {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0, "box_nms_thresh": 1.0}
"""Generator options that keep every candidate (for comparing candidate by candidate)."""
NMS_ONLY = {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}
"""Generator options that keep every candidate up to the box NMS (random weights pass no
default threshold)."""


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
