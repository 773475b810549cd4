"""Where the development data lives (``../shared/data`` beside the repository)."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def data_path(*parts: str) -> Path:
    """A file under the shared development data folder, or skip the test if it is absent."""
    path = DATA_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"development data not found at {path} (expected ../shared/data beside the repo)"
        )
    return path
