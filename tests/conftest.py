"""Shared fixtures: development data location and small synthetic images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def data_path(*parts: str) -> Path:
    """A file under the shared development data folder, or skip the test if it is absent."""
    path = DATA_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"development data not found at {path} (expected ../shared/data beside the repo)"
        )
    return path


@pytest.fixture(scope="session")
def truck_path() -> Path:
    return data_path("sam_demo_images", "images", "truck.jpg")


@pytest.fixture(scope="session")
def truck_image(truck_path: Path) -> np.ndarray:
    from tijeras.io import load_image

    return load_image(truck_path)
