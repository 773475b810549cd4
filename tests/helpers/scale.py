"""Labellers and images for the tests of ``tijeras.scale``; importable on Ray workers (the test
clusters put ``tests/`` on their ``PYTHONPATH``).

``recording_labeller`` is everything mode that also leaves its process id in the folder named
by ``$TIJERAS_TEST_CONTROL`` (``pid-N``) and waits the seconds written in that folder's
``delay`` file before each image (so a test can kill a worker mid-run); without the variable it
is plain everything mode. ``stub_labeller`` returns one fixed mask without a model.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

RECORDING = "helpers.scale:recording_labeller"
STUB = "helpers.scale:stub_labeller"
FAST = {"points_per_side": 4, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}
"""Everything-mode options that keep the random-weight test model's masks (it scores low)."""
FAST_FLAGS = ["--points-per-side", "4", "--pred-iou-thresh", "0", "--stability-score-thresh", "0"]


def recording_labeller(job: Any) -> Any:
    from tijeras.scale.labelling import everything_labeller

    folder = os.environ.get("TIJERAS_TEST_CONTROL")
    delay = 0.0
    if folder:
        Path(folder, f"pid-{os.getpid()}").touch()
        delay_file = Path(folder, "delay")
        delay = float(delay_file.read_text()) if delay_file.is_file() else 0.0
    label = everything_labeller(job)

    def slow(rgb: np.ndarray) -> list[dict[str, Any]]:
        time.sleep(delay)
        return label(rgb)

    return slow


def stub_labeller(job: Any) -> Any:
    from tijeras.io import coco_rle

    def label(rgb: np.ndarray) -> list[dict[str, Any]]:
        mask = np.zeros(rgb.shape[:2], dtype=bool)
        mask[: max(1, rgb.shape[0] // 2), : max(1, rgb.shape[1] // 2)] = True
        (rle,) = coco_rle(mask[None])
        return [
            {
                "segmentation": rle,
                "area": int(mask.sum()),
                "bbox": [0.0, 0.0, float(mask.shape[1] // 2), float(mask.shape[0] // 2)],
                "predicted_iou": 1.0,
                "stability_score": 1.0,
                "point_coords": [[0.0, 0.0]],
                "crop_box": [0, 0, rgb.shape[1], rgb.shape[0]],
            }
        ]

    return label


def write_images(folder: Path, count: int, width: int = 96, height: int = 64) -> list[Path]:
    """``count`` small distinct PNGs ``img_000.png``... (a square of another colour each)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        y, x = np.mgrid[0:height, 0:width]
        rgb = np.stack([x * 2 % 256, y * 3 % 256, (x + y + index * 40) % 256], axis=-1).astype(
            np.uint8
        )
        rgb[height // 4 : 3 * height // 4, width // 3 : 2 * width // 3] = (
            250,
            (index * 37) % 256,
            30,
        )
        path = folder / f"img_{index:03d}.png"
        Image.fromarray(rgb).save(path)
        paths.append(path)
    return paths


def write_broken(path: Path) -> Path:
    """A file named as a JPEG that is not one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8\xff not a jpeg")
    return path


def annotations(path: Path) -> str:
    """An output's lines after the first (its image record and masks; the first line holds
    the run id and timing, which differ between runs)."""
    return path.read_text(encoding="utf-8").split("\n", 1)[1]


FAILING = "helpers.scale:failing_labeller"


def failing_labeller(job: Any) -> Any:
    """The stub, except for images 50 pixels wide: a RuntimeError, as a model bug would raise."""
    stub = stub_labeller(job)

    def label(rgb: np.ndarray) -> list[dict[str, Any]]:
        if rgb.shape[1] == 50:
            raise RuntimeError("shape mismatch in the decoder")
        return stub(rgb)

    return label


BUGGY = "helpers.scale:buggy_labeller"


def buggy_labeller(job: Any) -> Any:
    """Raises a KeyError on every image: a bug, which stops the run."""

    def label(rgb: np.ndarray) -> list[dict[str, Any]]:
        raise KeyError("no such head")

    return label
