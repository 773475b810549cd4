"""Shared fixtures: development data location and small synthetic images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers.data import DATA_DIR, data_path  # noqa: F401  (re-exported)


def pytest_configure(config: pytest.Config) -> None:
    """Under ``-n 2`` (``scripts/test``) each of the two test processes computes on one thread:
    two processes of two threads each on two cores would make every parallel region wait."""
    import os

    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


@pytest.fixture(scope="session")
def truck_path() -> Path:
    return data_path("sam_demo_images", "images", "truck.jpg")


@pytest.fixture(scope="session")
def truck_image(truck_path: Path) -> np.ndarray:
    from tijeras.io import load_image

    return load_image(truck_path)


@pytest.fixture(scope="session")
def everything_photo(truck_path: Path) -> np.ndarray:
    """The truck photo at 300 x 200: everything-mode comparisons decode and encode every
    candidate at full resolution, and the official generators do it in Python."""
    from PIL import Image

    return np.array(Image.open(truck_path).convert("RGB").resize((300, 200)))
