"""Helpers of the web app's video tests: small MP4 clips made with OpenCV, and the tiny random
SAM 2 with objects present (its object-score head shifted up, so masks are not all empty)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SQUARE_SIZE = (96, 128)  # H, W of the synthetic clip


def square_frame(i: int) -> np.ndarray:
    """Frame ``i`` of the synthetic clip: a 30 x 30 bright square moving 8 pixels right per
    frame over a dark background (RGB)."""
    h, w = SQUARE_SIZE
    frame = np.full((h, w, 3), 20, np.uint8)
    frame[30:60, 10 + 8 * i : 40 + 8 * i] = 230
    return frame


def write_mp4(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> bytes:
    """RGB frames as an ``mp4v`` MP4 at ``path``; returns its bytes."""
    import cv2

    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for frame in frames:
        writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
    writer.release()
    return path.read_bytes()


def square_clip(path: Path, frames: int = 8, fps: float = 10.0) -> bytes:
    return write_mp4(path, [square_frame(i) for i in range(frames)], fps)


def folder_clip(folder: Path, path: Path, frames: int = 8, fps: float = 10.0) -> bytes:
    """The first ``frames`` JPEG frames of a folder as an MP4."""
    from PIL import Image

    files = sorted(folder.glob("*.jpg"))[:frames]
    return write_mp4(path, [np.asarray(Image.open(f).convert("RGB")) for f in files], fps)


def present_model():
    """``sam2-test-tiny`` (seeded random weights) with its object-score head shifted up."""
    import torch

    from tijeras.api import load_model

    torch.manual_seed(0)
    model = load_model("sam2-test-tiny")
    with torch.no_grad():
        model.sam_mask_decoder.pred_obj_score_head.layers[-1].bias += 1.0
    return model


def present_checkpoint(path: Path) -> Path:
    """:func:`present_model`'s weights as a checkpoint for ``--video-checkpoint``."""
    import torch

    torch.save(present_model().state_dict(), path)
    return path
