"""Synthetic object datasets for the evaluation and training tests.

Each image holds one shape (ellipse, rectangle or diamond) filled with a texture (stripes,
noise or a checkerboard) over a differently textured background. Objects share warm colours
and backgrounds cool ones, like a fine-tuning domain with one kind of object; shapes, sizes,
positions and textures vary.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def _texture(rng: np.random.Generator, size: int, color: np.ndarray) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    kind = rng.integers(3)
    if kind == 0:
        freq, angle = rng.uniform(0.15, 0.6), rng.uniform(0, np.pi)
        pattern = np.sin(freq * (xx * np.cos(angle) + yy * np.sin(angle)))
    elif kind == 1:
        pattern = rng.standard_normal((size, size))
    else:
        step = rng.integers(4, 10)
        pattern = (((yy // step) + (xx // step)) % 2) * 2.0 - 1.0
    return np.clip(color[None, None, :] + 25 * pattern[..., None], 0, 255)


def _shape(rng: np.random.Generator, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    cy, cx = rng.uniform(0.3, 0.7, size=2) * size
    ry, rx = rng.uniform(0.12, 0.3, size=2) * size
    kind = rng.integers(3)
    if kind == 0:
        return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    if kind == 1:
        return (abs(yy - cy) <= ry) & (abs(xx - cx) <= rx)
    return (abs(yy - cy) / ry + abs(xx - cx) / rx) <= 1


def make_shapes_dataset(root: Path, count: int, seed: int, size: int = 128) -> Path:
    """Write ``count`` image/mask pairs in the ``images/`` + ``masks/`` layout under ``root``."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    for i in range(count):
        back = np.array([rng.integers(20, 120), rng.integers(60, 200), rng.integers(120, 230)])
        front = np.array([rng.integers(190, 240), rng.integers(60, 140), rng.integers(20, 80)])
        mask = _shape(rng, size)
        image = np.where(mask[..., None], _texture(rng, size, front), _texture(rng, size, back))
        Image.fromarray(image.astype(np.uint8)).save(root / "images" / f"shape{i:03d}.png")
        Image.fromarray((mask * 255).astype(np.uint8)).save(root / "masks" / f"shape{i:03d}.png")
    return root
