"""Fixtures of the video tests (helpers in ``video/reference.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.data import data_path

CLIP = ("sam2_bedroom_clip", "frames")


@pytest.fixture(scope="session")
def clip_dir() -> Path:
    """The 40 bedroom frames (960 x 540 JPEG); tests skip with a message when absent."""
    return data_path(*CLIP)


@pytest.fixture()
def one_thread():
    """Run small models on one thread: their operations are too small to share, and on a
    busy machine every parallel region would wait for a second core."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)
