"""Comparing tijeras with the official implementations: tolerances, weights, prompts.

Tolerances: embeddings, low-res logits and scores within ``REL_TOL`` of the largest magnitude;
final masks identical except pixels whose reference logit is within ``LOGIT_BAND`` of the
threshold (where float rounding may fall either way).
"""

from __future__ import annotations

import hashlib
from functools import partial
from pathlib import Path

import numpy as np
import torch

REL_TOL = 1e-4
LOGIT_BAND = 1e-4


SAM_MODELS = ("test-tiny", "vit_b")
"""The SAM models the parity tests compare: ``test-tiny`` (Meta's classes at toy widths) in the
default suite, ViT-B at full size in the slow one."""


def perturbed_sam_pair(name: str, folder: Path) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Meta's SAM ``name`` (``test-tiny`` or a registry key) with perturbed random weights,
    and tijeras' loaded from the same .pth file."""
    import segment_anything

    import tijeras

    torch.manual_seed(0)
    ref = (
        official_tiny_sam() if name == "test-tiny" else segment_anything.sam_model_registry[name]()
    )
    perturb(ref)
    path = folder / f"perturbed_{name}.pth"
    torch.save(ref.state_dict(), path)
    return ref.eval(), tijeras.sam_model_registry[name](checkpoint=str(path))


def sam_model_params():
    """``pytest.param``s of ``SAM_MODELS``, the full-size one marked slow."""
    import pytest

    return [
        pytest.param(name, marks=[pytest.mark.slow] if name != "test-tiny" else [])
        for name in SAM_MODELS
    ]


def perturb(model: torch.nn.Module, seed: int = 0, scale: float = 0.02) -> None:
    """Add noise to every parameter, so zero-initialised ones (positions, biases) matter."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * scale)


def encode_once(encoder: torch.nn.Module) -> None:
    """Make ``encoder`` compute each distinct input once and return the kept output afterwards
    (the everything-mode tests run several generators on one photo; the encoders' own parity
    is tested on its own)."""
    kept: dict[tuple, object] = {}
    forward = encoder.forward

    def once(x: torch.Tensor):
        data = x.detach().cpu().contiguous().numpy().tobytes()
        key = (tuple(x.shape), x.dtype, hashlib.sha256(data).hexdigest())
        if key not in kept:
            kept[key] = forward(x)
        return kept[key]

    encoder.forward = once


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


def official_tiny_sam(checkpoint: str | Path | None = None) -> torch.nn.Module:
    """The official ``Sam`` with the structure of tijeras' ``test-tiny`` (ViT of 2 blocks of
    width 32, a decoder of width 32), loaded from ``checkpoint`` as Meta's builders do."""
    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=2,
            embed_dim=32,
            img_size=1024,
            mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=2,
            patch_size=16,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=(1,),
            window_size=14,
            out_chans=32,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=32,
            image_embedding_size=(64, 64),
            input_image_size=(1024, 1024),
            mask_in_chans=8,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=32, mlp_dim=64, num_heads=2),
            transformer_dim=32,
            iou_head_depth=3,
            iou_head_hidden_dim=32,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    sam.eval()
    if checkpoint is not None:
        sam.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    return sam


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
