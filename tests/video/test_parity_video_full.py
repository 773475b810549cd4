"""Parity with Meta's ``SAM2VideoPredictor`` on the full SAM 2.1 and SAM 2.0 Hiera-T models
(1024 x 1024 input, four memory-attention layers, 64 x 64 RoPE grid) on the bedroom frames
(``slow``: about 70 object-frames per side and model).

One session per model goes through every case: a click and a box on frame 0 (two objects,
tracked past the point where the memory bank is full), a correction click on a tracked frame,
an object added by a mask after tracking started, reverse propagation, and ``remove_object``;
every returned frame's logits (per object, within 1e-4 of its largest magnitude) and every
stored object score must agree. The small models of ``test_parity_video.py`` run the same
cases over all 40 frames, hole filling included.

Hole filling is off here. On random weights the full-size decoder's logits are a fine speckle
around 0 (thousands of one-pixel holes per frame), and whether a pixel at a logit of 1e-8 is
a hole is decided by rounding: on SAM 2.0's box object, frame 1, one low-res pixel is
+1.06e-8 in Meta's code and -1.58e-7 in tijeras' (the decoders' outputs agree within 5e-7),
so tijeras fills it with 0.1 and Meta does not, and the frame's logits differ by 10 % of their
largest magnitude around that pixel. Real weights give smooth logits, where such a tie is rare and
would move Meta's own results between devices as much; the filling itself is compared bit for
bit in the small-model sessions.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sam2", reason="parity needs Meta's sam2 package")
pytest.importorskip("hydra", reason="Meta's sam2 configs need hydra")

from video.reference import (
    assert_logits_close,
    compare_propagation,
    meta_video_model,
    our_predictor,
    run_both,
)

pytestmark = [pytest.mark.parity, pytest.mark.slow]


def both(ref, ours, rs, os_, method, *args, **kwargs):
    (rf, r_ids, r_m), (of, o_ids, o_m) = run_both(
        lambda: getattr(ref, method)(rs, *args, **kwargs),
        lambda: getattr(ours, method)(os_, *args, **kwargs),
    )
    assert of == rf and list(o_ids) == list(r_ids)
    assert_logits_close(o_m, r_m, f"{method} on frame {rf}")


@pytest.mark.parametrize("version", ["2.1", "2.0"], ids=lambda v: f"sam{v}")
def test_full_model_session(version, clip_dir):
    ref = meta_video_model(version, small=False, fill_hole_area=0)
    ours = our_predictor(ref, version, small=False, fill_hole_area=0)
    rs, os_ = run_both(
        lambda: ref.init_state(str(clip_dir)), lambda: ours.init_state(str(clip_dir))
    )
    both(ref, ours, rs, os_, "add_new_points_or_box", 0, 1, points=[[210, 350]], labels=[1])
    both(ref, ours, rs, os_, "add_new_points_or_box", 0, 2, box=[100, 80, 300, 400])
    assert compare_propagation(ref, rs, ours, os_, max_frame_num_to_track=11) == 12
    both(ref, ours, rs, os_, "add_new_points_or_box", 8, 1, points=[[600, 300]], labels=[0])
    compare_propagation(ref, rs, ours, os_, start_frame_idx=9, max_frame_num_to_track=2)
    mask = np.zeros((540, 960), bool)
    mask[150:420, 520:760] = True
    both(ref, ours, rs, os_, "add_new_mask", 11, 3, mask)
    compare_propagation(ref, rs, ours, os_, start_frame_idx=11, max_frame_num_to_track=5)
    compare_propagation(
        ref, rs, ours, os_, start_frame_idx=15, reverse=True, max_frame_num_to_track=3
    )
    (r_ids, r_frames), (o_ids, o_frames) = run_both(
        lambda: ref.remove_object(rs, 2), lambda: ours.remove_object(os_, 2)
    )
    assert list(o_ids) == list(r_ids) == [1, 3]
    assert [f for f, _ in o_frames] == [f for f, _ in r_frames] == [0]
    assert_logits_close(o_frames[0][1], r_frames[0][1], "frame 0 after remove_object")
    compare_propagation(ref, rs, ours, os_, start_frame_idx=16, max_frame_num_to_track=3)
