"""The code base stays clean under ruff (pinned in constraints.txt): lint rules and formatting."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TREES = ["src", "tests", "bench"]


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if exe is None:
        pytest.fail("ruff is not installed: it is a test dependency (pip install -e '.[test]')")
    return subprocess.run(
        [exe, *args, *TREES], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


def test_ruff_check() -> None:
    result = _ruff("check", "--output-format", "concise")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = _ruff("format", "--check")
    assert result.returncode == 0, result.stdout + result.stderr
