"""Comparing tijeras with the official implementations: tolerances, weights, prompts.

Tolerances: embeddings, low-res logits and scores within ``REL_TOL`` of the largest magnitude;
final masks identical except pixels whose reference logit is within ``LOGIT_BAND`` of the
threshold (where float rounding may fall either way).
"""

from __future__ import annotations

import numpy as np
import torch

REL_TOL = 1e-4
LOGIT_BAND = 1e-4


def perturb(model: torch.nn.Module, seed: int = 0, scale: float = 0.02) -> None:
    """Add noise to every parameter, so zero-initialised ones (positions, biases) matter."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * scale)


def assert_close(ours, ref, what: str, rel_tol: float = REL_TOL) -> None:
    """Max difference at most ``rel_tol`` times the reference's largest magnitude."""
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != {ref.shape}"
    scale = np.abs(ref).max()
    err = np.abs(ours - ref).max()
    assert err <= rel_tol * scale, f"{what}: max diff {err:.3g} > {rel_tol} x {scale:.3g}"


def assert_masks_match(ours_masks, ref_logits, threshold: float = 0.0) -> None:
    """Masks equal to the reference's logits thresholded, but within the band. Boolean masks
    are compared as they are; float 0/1 masks (SAM 2's API returns them) at 0.5."""
    ref_masks = ref_logits > threshold
    if ours_masks.dtype != np.bool_:
        assert ours_masks.dtype == np.float32, ours_masks.dtype
        ours_masks = ours_masks > 0.5
    differ = ours_masks != ref_masks
    near = np.abs(ref_logits - threshold) <= LOGIT_BAND
    assert not (differ & ~near).any(), f"{int((differ & ~near).sum())} mask pixels differ"


POINT = np.array([[500, 375]])
SAM_PROMPTS = {
    "one positive point": {"point_coords": POINT, "point_labels": np.array([1])},
    "positive and negative points": {
        "point_coords": np.array([[500, 375], [1125, 625]]),
        "point_labels": np.array([1, 0]),
    },
    "box": {"box": np.array([425, 600, 700, 875])},
    "box with points": {
        "box": np.array([425, 600, 700, 875]),
        "point_coords": np.array([[575, 750]]),
        "point_labels": np.array([0]),
    },
}
"""Prompts on the truck photo (1800 x 1200) for the SAM-family parity tests."""


def check_predict(rp, op, kwargs: dict, what: str, *, same_dtypes: bool = False) -> None:
    """Meta's ``SamPredictor.predict`` (``rp``) against the drop-in (``op``) on one prompt:
    mask shape and type, low-res logits, IoU, masks (and the dtypes with ``same_dtypes``)."""
    ref_logits, ref_iou, ref_low = rp.predict(**kwargs, return_logits=True)
    masks, iou, low = op.predict(**kwargs)
    assert masks.shape == ref_logits.shape and masks.dtype == np.bool_
    if same_dtypes:
        assert iou.dtype == ref_iou.dtype and low.dtype == ref_low.dtype
    assert_close(low, ref_low, f"{what} low-res logits")
    assert_close(iou, ref_iou, f"{what} IoU")
    assert_masks_match(masks, ref_logits)


def check_mask_input(rp, op, prompt: dict) -> None:
    """The best low-res logits of Meta's prediction fed back as ``mask_input`` to both sides."""
    _, iou, low = rp.predict(**prompt)
    prev = low[np.argmax(iou)][None]
    kwargs = dict(prompt, mask_input=prev, multimask_output=False)
    ref_logits, ref_iou, ref_low = rp.predict(**kwargs, return_logits=True)
    masks, iou2, low2 = op.predict(**kwargs)
    assert_close(low2, ref_low, "mask_input low-res logits")
    assert_close(iou2, ref_iou, "mask_input IoU")
    assert_masks_match(masks, ref_logits)
