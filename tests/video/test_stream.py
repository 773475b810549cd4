"""The streaming API gives the offline predictor's results on the same frames and prompts,
frame by frame, from arrays, a generator or an OpenCV capture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from video.reference import small_config

from tijeras.models.sam2.model import Sam2Model
from tijeras.models.sam2.video_config import tracking_config
from tijeras.sam2.video_predictor import SAM2VideoPredictor
from tijeras.video.errors import VideoPromptError
from tijeras.video.frames import open_frames
from tijeras.video.stream import ObjectPrompt, VideoStream

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model() -> Sam2Model:
    torch.manual_seed(0)
    m = Sam2Model(small_config("2.1")).eval()
    with torch.no_grad():  # objects present on most frames
        m.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.add_(2.0)
    return m


@pytest.fixture(scope="module")
def frames(clip_dir: Path) -> list[np.ndarray]:
    source = open_frames(clip_dir)
    return [source.read(i) for i in range(source.num_frames)]


def offline(model, frames):
    """The offline predictor, prompted as the stream is below."""
    p = SAM2VideoPredictor(model, tracking_config(model.config))
    s = p.init_state(frames)
    out = {}
    p.add_new_points_or_box(s, 0, 1, points=[[210, 350]], labels=[1])
    out.update({f: m for f, _, m in p.propagate_in_video(s, max_frame_num_to_track=5)})
    _, _, out[5] = p.add_new_points_or_box(s, 5, "cup", box=[100, 80, 300, 400])
    out.update(
        {f: m for f, _, m in p.propagate_in_video(s, start_frame_idx=5, max_frame_num_to_track=4)}
    )
    _, _, out[9] = p.add_new_points_or_box(s, 9, 1, points=[[400, 120]], labels=[0])
    out.update({f: m for f, _, m in p.propagate_in_video(s, start_frame_idx=10)})
    return out


def test_stream_matches_the_offline_predictor(model, frames):
    expected = offline(model, frames)
    stream = VideoStream(model)
    got = {}
    for i, frame in enumerate(frames):
        prompts = []
        if i == 0:
            prompts = [ObjectPrompt(1, points=[[210, 350]], labels=[1])]
        elif i == 5:
            prompts = [ObjectPrompt("cup", box=[100, 80, 300, 400])]
        result = stream.push(frame, prompts)
        assert result.frame_idx == i
        got[i] = result.logits
        if i == 9:  # a correction after seeing the frame
            got[i] = stream.add_prompt(ObjectPrompt(1, points=[[400, 120]], labels=[0])).logits
    assert sorted(got) == sorted(expected) == list(range(40))
    for i in range(40):
        assert got[i].shape == expected[i].shape, f"frame {i}"
        assert torch.equal(got[i], expected[i]), f"frame {i} differs"
    assert stream.obj_ids == [1, "cup"]
    # held: what the next frames read (15 pointers, 6 memories back) and the same windows
    # after the conditioning frame 0, which a later propagation from it would read
    track = stream.state.objects[1]
    held = sorted(track.non_cond)
    assert held == list(range(1, 16)) + list(range(39 - 14, 40)), held
    with_memory = [f for f in held if track.non_cond[f].memory is not None]
    assert with_memory == list(range(1, 7)) + list(range(39 - 5, 40)), with_memory


def test_stream_from_a_capture_and_a_generator(model, frames, tmp_path: Path):
    import cv2

    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 24.0, (960, 540))
    for frame in frames[:6]:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    capture = cv2.VideoCapture(str(path))
    prompts = {0: [ObjectPrompt(1, points=[[210, 350]], labels=[1])]}
    from_capture = [r.logits for r in VideoStream(model).run(capture, prompts)]
    capture.release()
    decoded = open_frames(path)
    generator = (decoded.read(i) for i in range(decoded.num_frames))
    from_generator = [r.logits for r in VideoStream(model).run(generator, prompts)]
    assert len(from_capture) == len(from_generator) == 6
    for a, b in zip(from_capture, from_generator):
        assert torch.equal(a, b)


def test_stream_without_objects_and_errors(model, frames):
    stream = VideoStream(model)
    empty = stream.push(frames[0])
    assert empty.obj_ids == () and empty.logits.shape == (0, 1, 540, 960)
    with pytest.raises(VideoPromptError, match="outside frame 1"):
        stream.push(frames[1], [ObjectPrompt(1, points=[[2000, 10]], labels=[1])])
    with pytest.raises(VideoPromptError, match="no points, box or mask"):
        ObjectPrompt(1)
    with pytest.raises(VideoPromptError, match="push a frame"):
        VideoStream(model).add_prompt(ObjectPrompt(1, box=[0, 0, 10, 10]))
