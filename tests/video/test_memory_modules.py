"""The SAM 2 video modules against Meta's, piece by piece: memory attention (RoPE, pointer
tokens, batched objects), the memory encoder, the choice of attended frames, and the tracking
options that change it (temporal stride, a limit on conditioning frames, non-overlapping
masks, corrections as conditioning frames) end to end."""

from __future__ import annotations

import random

import pytest
import torch

pytest.importorskip("sam2", reason="needs Meta's sam2 package")
pytest.importorskip("hydra", reason="Meta's sam2 configs need hydra")

from sam2.modeling.sam2_utils import select_closest_cond_frames
from video.reference import (
    META_CONFIGS,
    assert_logits_close,
    compare_propagation,
    meta_video_model,
    our_predictor,
    run_both,
)

from tijeras.models.sam2.config import MemoryConfig
from tijeras.models.sam2.memory import MemoryAttention, MemoryEncoder
from tijeras.models.sam2.memory_bank import choose_conditioning
from tijeras.models.sam2.rope import rotary_table, rotate

pytestmark = [pytest.mark.parity, pytest.mark.usefixtures("one_thread")]


def meta_modules():
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    GlobalHydra.instance().clear()
    initialize_config_module("sam2", version_base="1.2")
    cfg = compose(config_name=META_CONFIGS["2.1"])
    OmegaConf.resolve(cfg)
    torch.manual_seed(0)
    attention = instantiate(cfg.model.memory_attention).eval()
    encoder = instantiate(cfg.model.memory_encoder).eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in [*attention.parameters(), *encoder.parameters()]:
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    return attention, encoder


@pytest.fixture(scope="module")
def modules():
    ref_attention, ref_encoder = meta_modules()
    attention = MemoryAttention(MemoryConfig()).eval()
    attention.load_state_dict(ref_attention.state_dict(), strict=True)
    encoder = MemoryEncoder(MemoryConfig()).eval()
    encoder.load_state_dict(ref_encoder.state_dict(), strict=True)
    return ref_attention, attention, ref_encoder, encoder


@pytest.mark.parametrize(
    "objects, frames, pointers, side", [(1, 3, 8, 16), (3, 7, 64, 16), (2, 2, 0, 32)]
)
def test_memory_attention_matches(modules, objects, frames, pointers, side):
    ref, ours, _, _ = modules
    n = side * side
    gen = torch.Generator().manual_seed(objects)
    curr, pos = torch.randn(n, 1, 256, generator=gen), torch.randn(n, 1, 256, generator=gen)
    mem = torch.randn(frames * n + pointers, objects, 64, generator=gen)
    mem_pos = torch.randn(frames * n + pointers, objects, 64, generator=gen)
    with torch.inference_mode():
        expected = ref(
            curr=[curr.expand(-1, objects, -1)],
            curr_pos=[pos.expand(-1, objects, -1)],
            memory=mem,
            memory_pos=mem_pos,
            num_obj_ptr_tokens=pointers,
        ).transpose(0, 1)
        got = ours(
            curr.transpose(0, 1),
            pos.transpose(0, 1),
            mem.transpose(0, 1),
            mem_pos.transpose(0, 1),
            pointers,
        )
    assert got.shape == expected.shape
    scale = float(expected.abs().max())
    assert float((got - expected).abs().max()) <= 1e-5 * scale


def test_memory_encoder_matches(modules):
    _, _, ref, ours = modules
    gen = torch.Generator().manual_seed(3)
    pix = torch.randn(1, 256, 16, 16, generator=gen)
    masks = torch.randn(2, 1, 256, 256, generator=gen) * 10
    with torch.inference_mode():
        expected = ref(pix.expand(2, -1, -1, -1), masks, skip_mask_sigmoid=True)
        features, pos = ours(pix, masks, skip_mask_sigmoid=True)  # the frame shared, not copied
    scale = float(expected["vision_features"].abs().max())
    assert float((features - expected["vision_features"]).abs().max()) <= 1e-5 * scale
    assert torch.allclose(pos, expected["vision_pos_enc"][0][:1], atol=1e-6)


def test_rotation_is_relative():
    """Rotated dot products depend only on the offset between the two grid positions."""
    table = rotary_table(8, (4, 4))
    gen = torch.Generator().manual_seed(0)
    q, k = torch.randn(8, generator=gen), torch.randn(8, generator=gen)
    qs, ks = rotate(q.expand(16, 8), table), rotate(k.expand(16, 8), table)
    # (0,0)-(1,2) and (2,1)-(3,3): same offset (1 down, 2 right)
    assert torch.allclose(qs[0] @ ks[1 * 4 + 2], qs[2 * 4 + 1] @ ks[3 * 4 + 3], atol=1e-5)


def test_complex_rotation_equals_the_real_form():
    """float32 rotations take one complex product per channel pair; the result is the real
    form's (cos/sin products, pairs swapped), also written into a slice of a key buffer as
    the memory cross-attention does, and bfloat16 keeps the real form."""
    from dataclasses import replace

    table = rotary_table(16, (3, 4))
    real = replace(table, polar=None)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 1, 3 * 12 + 5, 16, generator=gen)  # 3 frames of 12 tokens, 5 pointers
    grids = x[..., :36, :]
    expected = rotate(grids, real)
    assert torch.allclose(rotate(grids, table), expected, atol=1e-6)
    buffer = torch.zeros_like(x)
    rotate(grids, table, out=buffer[..., :36, :])
    assert torch.allclose(buffer[..., :36, :], expected, atol=1e-6)
    assert torch.count_nonzero(buffer[..., 36:, :]) == 0
    half = rotary_table(16, (3, 4), dtype=torch.bfloat16)
    assert half.polar is None
    assert torch.allclose(rotate(grids.bfloat16(), half).float(), expected, atol=0.05)


def test_conditioning_choice_matches():
    rng = random.Random(0)
    for _ in range(200):
        frames = rng.sample(range(60), rng.randint(1, 8))
        frame = rng.randrange(60)
        limit = rng.choice([-1, 2, 3, 4])
        selected, unselected = select_closest_cond_frames(frame, {t: t for t in frames}, limit)
        choice = choose_conditioning(frame, frames, limit)
        assert list(choice.selected) == list(selected)
        assert choice.unselected == set(unselected)


OPTIONS = [
    "++model.memory_temporal_stride_for_eval=3",
    "++model.max_cond_frames_in_attn=2",
    "++model.add_all_frames_to_correct_as_cond=true",
]


def test_tracking_options_match(clip_dir):
    from tijeras.models.sam2.video_config import parse_overrides

    ref = meta_video_model("2.1", small=True, overrides=OPTIONS)
    ours = our_predictor(ref, "2.1", small=True, **parse_overrides(OPTIONS))
    rs, os_ = run_both(
        lambda: ref.init_state(str(clip_dir)), lambda: ours.init_state(str(clip_dir))
    )

    def both(method, *args, **kwargs):
        (rf, _, r_m), (_, _, o_m) = run_both(
            lambda: getattr(ref, method)(rs, *args, **kwargs),
            lambda: getattr(ours, method)(os_, *args, **kwargs),
        )
        assert_logits_close(o_m, r_m, f"{method} on frame {rf}")

    both("add_new_points_or_box", 0, 1, points=[[210, 350]], labels=[1])
    both("add_new_points_or_box", 10, 1, points=[[300, 300]], labels=[1])
    both("add_new_points_or_box", 0, 2, box=[100, 80, 300, 400])
    both("add_new_points_or_box", 25, 1, points=[[500, 200]], labels=[1])
    compare_propagation(ref, rs, ours, os_)
    both("add_new_points_or_box", 30, 1, points=[[600, 300]], labels=[0])  # a correction
    compare_propagation(ref, rs, ours, os_, start_frame_idx=30)
    compare_propagation(ref, rs, ours, os_, start_frame_idx=35, reverse=True)


def test_non_overlapping_masks(clip_dir):
    """Meta's constraint on the same logits, and applied to every returned frame. (End to end
    against Meta it is ill-conditioned on random weights: their objects' logits nearly tie,
    and a tie broken the other way by rounding moves a pixel to the other object.)"""
    from sam2.modeling.sam2_base import SAM2Base

    from tijeras.models.sam2.tracking import Sam2Tracking

    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 1, 20, 30, generator=gen) * 5
    ours = Sam2Tracking.non_overlapping(None, logits)  # type: ignore[arg-type]
    assert torch.equal(ours, SAM2Base._apply_non_overlapping_constraints(None, logits))

    ref = meta_video_model("2.1", small=True)
    plain = our_predictor(ref, "2.1", small=True)
    exclusive = our_predictor(ref, "2.1", small=True, non_overlap_masks=True)
    outputs = []
    for predictor in (plain, exclusive):
        state = predictor.init_state(str(clip_dir))
        predictor.add_new_points_or_box(state, 0, 1, points=[[210, 350]], labels=[1])
        predictor.add_new_points_or_box(state, 0, 2, box=[100, 80, 300, 400])
        outputs.append(
            [m for _, _, m in predictor.propagate_in_video(state, max_frame_num_to_track=5)]
        )
    for a, b in zip(*outputs):
        assert torch.equal(SAM2Base._apply_non_overlapping_constraints(None, a), b)
