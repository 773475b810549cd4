"""The tracker's bookkeeping beyond parity: the typed state (and Meta's keys on it), released
memories (an error, never a different result), and the errors of Meta's API."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from video.reference import small_config

from tijeras.errors import TijerasError
from tijeras.models.sam2.model import Sam2Model
from tijeras.models.sam2.video_config import parse_overrides, tracking_config
from tijeras.sam2.video_predictor import SAM2VideoPredictor
from tijeras.video.errors import FrameIndexError, TrackingError, VideoPromptError
from tijeras.video.state import FrameSpans

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def predictor() -> SAM2VideoPredictor:
    torch.manual_seed(0)
    model = Sam2Model(small_config("2.1")).eval()
    return SAM2VideoPredictor(model, tracking_config(model.config))


def test_state_is_typed_and_reads_metas_keys(predictor, clip_dir: Path):
    state = predictor.init_state(str(clip_dir))
    predictor.add_new_points_or_box(state, 0, 5, points=[[210, 350]], labels=[1])
    assert (state["num_frames"], state["video_height"], state["video_width"]) == (40, 540, 960)
    assert state["obj_ids"] == [5] and state.objects[5].points[0].num_points == 1
    with pytest.raises(KeyError, match="typed record"):
        state["output_dict_per_obj"]


def test_released_memories_are_an_error_not_a_different_result(predictor, clip_dir: Path):
    runs = {}
    for keep in (True, False):
        state = predictor.init_state(str(clip_dir), keep_all_memories=keep)
        predictor.add_new_points_or_box(state, 0, 1, points=[[210, 350]], labels=[1])
        first = [m for _, _, m in predictor.propagate_in_video(state)]
        again = [m for _, _, m in predictor.propagate_in_video(state)]  # reads near frame 0 only
        runs[keep] = (state, first, again)
    for a, b in zip(runs[True][1] + runs[True][2], runs[False][1] + runs[False][2]):
        assert torch.equal(a, b)
    state = runs[False][0]
    with pytest.raises(TrackingError, match="frame 20 were released"):
        predictor.add_new_points_or_box(state, 20, 1, points=[[10, 10]], labels=[1])
    with pytest.raises(TrackingError, match="frame 30 were released"):
        predictor.add_new_points_or_box(state, 30, 1, points=[[10, 10]], labels=[1])
    with pytest.raises(TrackingError, match="released"):  # reads frames 24..19
        list(predictor.propagate_in_video(state, start_frame_idx=25))
    predictor.add_new_points_or_box(state, 5, 1, points=[[10, 10]], labels=[1])  # still held


def test_metas_errors(predictor, clip_dir: Path):
    state = predictor.init_state(str(clip_dir))
    with pytest.raises(RuntimeError, match="No input points or masks"):
        list(predictor.propagate_in_video(state))
    with pytest.raises(ValueError, match="points and labels must be provided together"):
        predictor.add_new_points_or_box(state, 0, 1, points=[[1, 1]])
    with pytest.raises(VideoPromptError, match="cannot add a box without clearing"):
        predictor.add_new_points_or_box(state, 0, 1, box=[0, 0, 5, 5], clear_old_points=False)
    with pytest.raises(VideoPromptError, match=r"points must be N x 2"):
        predictor.add_new_points_or_box(state, 0, 1, points=[[1, 2, 3]], labels=[1])
    with pytest.raises(FrameIndexError, match="frame index 40 is out of range"):
        predictor.add_new_points_or_box(state, 40, 1, points=[[1, 1]], labels=[1])
    with pytest.raises(IndexError):
        predictor.add_new_mask(state, -1, 1, torch.ones(540, 960, dtype=torch.bool))
    with pytest.raises(VideoPromptError, match="must be H x W"):
        predictor.add_new_mask(state, 0, 1, torch.ones(1, 540, 960))
    predictor.add_new_points_or_box(state, 0, 1, points=[[210, 350]], labels=[1])
    with pytest.raises(TrackingError, match="unknown object id 9"):
        predictor.clear_all_prompts_in_frame(state, 0, 9)
    with pytest.raises(RuntimeError, match="Cannot remove object id 9"):
        predictor.remove_object(state, 9, strict=True)
    assert predictor.remove_object(state, 9) == ([1], [])
    predictor.reset_state(state)
    assert state.obj_ids == []


def test_clear_prompts_downgrades_a_conditioning_frame(predictor, clip_dir: Path):
    state = predictor.init_state(str(clip_dir))
    predictor.add_new_points_or_box(state, 0, 1, points=[[210, 350]], labels=[1])
    predictor.add_new_points_or_box(state, 4, 1, points=[[300, 300]], labels=[1])
    list(predictor.propagate_in_video(state, max_frame_num_to_track=6))
    frame, ids, masks = predictor.clear_all_prompts_in_frame(state, 4, 1)
    track = state.objects[1]
    assert frame == 4 and ids == [1] and masks.shape == (1, 1, 540, 960)
    assert 4 not in track.cond and 4 in track.non_cond and 4 not in track.points
    assert track.tracked_direction(4) is None


def test_overrides_and_spans():
    assert parse_overrides(["++model.non_overlap_masks=true", "++model.fill_hole_area=0"]) == {
        "non_overlap_masks": True,
        "fill_hole_area": 0,
    }
    with pytest.raises(TijerasError, match="only tracking options"):
        parse_overrides(["++model.image_size=512"])
    with pytest.raises(TijerasError, match="cannot read 'maybe'"):
        parse_overrides(["++model.non_overlap_masks=maybe"])
    spans = FrameSpans()
    for f in (3, 4, 6, 5, 10):
        spans.add(f)
    assert list(spans) == [3, 4, 5, 6, 10] and len(spans._runs) == 2
    spans.discard(5)
    assert list(spans) == [3, 4, 6, 10] and 5 not in spans and 6 in spans
