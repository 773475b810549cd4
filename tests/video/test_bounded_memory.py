"""Peak memory flat in video length: tracking a 2,000-frame synthetic video (frames made one at
a time, a reduced SAM 2.1 model at 320 x 320) peaks within 10 % of the peak at 200 frames,
through the streaming API and the drop-in predictor with ``keep_all_memories=False``. Each
run is a fresh process (``bench/_video_worker.py long``), so the peak is the process's own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def peak_mb(frames: int, api: str) -> float:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    cmd = [
        sys.executable,
        str(REPO / "bench" / "_video_worker.py"),
        "long",
        "--frames",
        str(frames),
        "--api",
        api,
        "--threads",
        "1",
    ]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mb"]


@pytest.mark.parametrize("api", ["stream", "offline"])
def test_peak_memory_is_flat_in_video_length(api):
    short, long = peak_mb(200, api), peak_mb(2000, api)
    assert long <= 1.10 * short, f"{api}: peak {long:.0f} MB at 2000 frames, {short:.0f} MB at 200"
