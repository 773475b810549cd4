"""Frame sources: lazy reading, ordering, video files (OpenCV) with reverse access, Meta's
resize and normalisation, and the errors a user can cause."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tijeras.errors import TijerasError
from tijeras.video.errors import FrameIndexError, VideoError
from tijeras.video.frames import (
    FrameSequence,
    FrameStream,
    ImageFolder,
    VideoFile,
    model_input,
    open_frames,
)


def numbered_frame(i: int, h: int = 48, w: int = 64) -> np.ndarray:
    """A frame whose mean colour encodes its index (survives lossy video coding)."""
    frame = np.zeros((h, w, 3), np.uint8)
    frame[...] = (10 * (i % 20) + 20, 255 - 10 * (i % 20), 128)
    return frame


def frame_index(frame: np.ndarray) -> int:
    return round((float(frame[..., 0].mean()) - 20) / 10)


@pytest.fixture()
def mp4(tmp_path: Path) -> Path:
    import cv2

    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 48))
    for i in range(20):
        writer.write(cv2.cvtColor(numbered_frame(i), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_image_folder_orders_by_number_and_reads_lazily(tmp_path: Path, monkeypatch):
    for i in (10, 2, 1, 0):
        Image.fromarray(numbered_frame(i)).save(tmp_path / f"{i}.jpg", quality=100)
    folder = ImageFolder(tmp_path)
    assert [p.stem for p in folder.paths] == ["0", "1", "2", "10"]
    assert folder.num_frames == 4 and folder.size == (48, 64)
    decoded = []
    original = ImageFolder._decode
    monkeypatch.setattr(
        ImageFolder, "_decode", lambda self, i: decoded.append(i) or original(self, i)
    )
    assert frame_index(folder.read(3)) == 10
    assert decoded == [3], "only the asked frame is decoded"


def test_image_folder_errors(tmp_path: Path):
    with pytest.raises(VideoError, match="no frames in"):
        ImageFolder(tmp_path)
    with pytest.raises(VideoError, match="not a folder"):
        ImageFolder(tmp_path / "missing")
    Image.fromarray(numbered_frame(0)).save(tmp_path / "00000.jpg")
    Image.fromarray(numbered_frame(1, h=32)).save(tmp_path / "00001.jpg")
    folder = open_frames(tmp_path)
    with pytest.raises(VideoError, match=r"frame 1 .* is 64x32, not 64x48"):
        folder.read(1)
    with pytest.raises(
        FrameIndexError, match=r"frame index 2 is out of range .* \(frames 0\.\.1\)"
    ):
        folder.read(2)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "00000.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(VideoError, match="cannot be read"):
        ImageFolder(tmp_path / "bad")


def test_video_file_random_and_reverse_access(mp4: Path):
    video = open_frames(mp4)
    assert isinstance(video, VideoFile)
    assert video.num_frames == 20 and video.size == (48, 64)
    forward = [frame_index(video.read(i)) for i in range(20)]
    assert forward == list(range(20))
    backward = [frame_index(video.read(i)) for i in range(19, -1, -1)]
    assert backward == list(range(19, -1, -1))
    assert [frame_index(video.read(i)) for i in (3, 17, 5)] == [3, 17, 5]
    video.close()


def test_video_bytes_and_errors(mp4: Path, tmp_path: Path):
    video = open_frames(mp4.read_bytes())
    assert video.num_frames == 20 and frame_index(video.read(7)) == 7
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 100)
    with pytest.raises(VideoError, match="cannot be read as a video|no decodable frame"):
        open_frames(broken)
    with pytest.raises(VideoError, match="not found"):
        open_frames(tmp_path / "missing.mp4")
    with pytest.raises(TijerasError, match="is an image"):
        Image.fromarray(numbered_frame(0)).save(tmp_path / "one.png")
        open_frames(tmp_path / "one.png")


def test_sequences_and_streams():
    made = []

    class Lazy:
        def __len__(self):
            return 1000

        def __getitem__(self, i):
            made.append(i)
            return numbered_frame(i)

    seq = FrameSequence(Lazy())
    assert seq.num_frames == 1000 and made == [0]
    assert frame_index(seq.read(999)) == 19 and made == [0, 999]
    tensor_frames = torch.from_numpy(np.stack([numbered_frame(i) for i in range(3)])).permute(
        0, 3, 1, 2
    )
    assert frame_index(open_frames(tensor_frames).read(2)) == 2  # 3 x H x W tensors
    stream = FrameStream(keep=2)
    for i in range(5):
        assert stream.push(numbered_frame(i)) == i
    assert stream.num_frames is None and frame_index(stream.read(4)) == 4
    with pytest.raises(FrameIndexError, match="no longer held"):
        stream.read(1)
    with pytest.raises(VideoError, match="expected H x W x 3"):
        stream.push(np.zeros((4, 4, 5)))


def test_model_input_is_metas_loader(clip_dir: Path):
    from sam2.utils.misc import load_video_frames_from_jpg_images

    pytest.importorskip("sam2")
    images, h, w = load_video_frames_from_jpg_images(
        str(clip_dir), image_size=256, offload_video_to_cpu=True, compute_device=torch.device("cpu")
    )
    frames = open_frames(clip_dir)
    assert (h, w) == frames.size == (540, 960)
    for i in (0, 17, 39):
        ours = model_input(frames.read(i), 256)
        assert torch.allclose(ours[0], images[i], atol=1e-6, rtol=0)
