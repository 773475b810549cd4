"""Framed masks: COCO run lengths decoded with numpy, masks moved between frames by runs."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from tijeras.automatic.frames import counts_of, decode_framed, encode_mask, place_rle, reframe


def _masks(rng: np.random.Generator, count: int):
    for index in range(count):
        height, width = (int(v) for v in rng.integers(1, 30, size=2))
        mask = rng.random((height, width)) < rng.random()
        if index % 5 == 0:
            mask[:] = True
        if index % 7 == 0:
            mask[:] = False
        yield mask


def test_counts_of_decodes_pycocotools_strings() -> None:
    rng = np.random.default_rng(0)
    for mask in _masks(rng, 200):
        counts = counts_of(encode_mask(mask))
        column_major = mask.T.reshape(-1)
        assert counts.sum() == mask.size
        assert np.array_equal(np.repeat(np.arange(len(counts)) % 2 == 1, counts), column_major)
    big = {"size": [70000, 70000], "counts": [4_899_999_000, 1000]}  # beyond 32 bits
    assert counts_of(big).tolist() == [4_899_999_000, 1000]


def test_reframe_equals_cropping_and_padding_the_dense_mask() -> None:
    rng = np.random.default_rng(1)
    for mask in _masks(rng, 300):
        h, w = mask.shape
        sx, sy = (int(v) for v in rng.integers(-6, 6, size=2))
        source = (sx, sy, sx + w, sy + h)
        tx, ty = (int(v) for v in rng.integers(-12, 12, size=2))
        target = (tx, ty, tx + int(rng.integers(1, 40)), ty + int(rng.integers(1, 40)))
        out = reframe(encode_mask(mask), source, target)
        x0, y0 = min(sx, tx), min(sy, ty)
        canvas = np.zeros((max(sy + h, target[3]) - y0, max(sx + w, target[2]) - x0), bool)
        canvas[sy - y0 : sy - y0 + h, sx - x0 : sx - x0 + w] = mask
        expected = canvas[ty - y0 : target[3] - y0, tx - x0 : target[2] - x0]
        assert np.array_equal(decode_framed(out), expected)
        # canonical: byte-identical to encoding the dense mask
        assert out["counts"] == mask_utils.encode(np.asfortranarray(expected, np.uint8))["counts"]


def test_reframe_refuses_a_mask_of_another_size() -> None:
    with pytest.raises(ValueError, match="does not fit frame"):
        reframe(encode_mask(np.ones((4, 5), bool)), (0, 0, 4, 5), (0, 0, 9, 9))


def test_place_rle_matches_encoding_the_full_mask() -> None:
    mask = np.zeros((5, 7), bool)
    mask[1:4, 2:6] = True
    full = np.zeros((20, 30), bool)
    full[10:15, 20:27] = mask
    placed = place_rle(mask, 20, 10, 20, 30)
    assert placed["counts"] == mask_utils.encode(np.asfortranarray(full, np.uint8))["counts"]
