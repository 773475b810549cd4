"""Shared fixtures: development data location and small synthetic images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers.data import DATA_DIR, data_path  # noqa: F401  (re-exported)


@pytest.fixture(scope="session")
def truck_path() -> Path:
    return data_path("sam_demo_images", "images", "truck.jpg")


@pytest.fixture(scope="session")
def truck_image(truck_path: Path) -> np.ndarray:
    from tijeras.io import load_image

    return load_image(truck_path)
