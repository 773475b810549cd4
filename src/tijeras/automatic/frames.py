"""Masks of a large image kept as compressed COCO RLEs of a small frame, not of the image.

A *framed* mask is a compressed COCO RLE (pycocotools' string, ``bytes`` counts) of a
rectangle ``frame = (x0, y0, x1, y1)`` (exclusive) of the image: usually the mask's own
bounding box. Work and memory then follow the object's size, never the image's: a mask of a
100,000 x 100,000 raster is as cheap as one of a photo, and COCO's 32-bit run lengths (which
cap a full-image RLE at 4.29 gigapixels) are never reached.

:func:`reframe` moves a framed mask into another frame (cropping and padding) by shifting its
runs, without decoding it, so two masks are compared or merged with pycocotools after both
are put in one common frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "Frame",
    "counts_of",
    "decode_framed",
    "encode_counts",
    "encode_mask",
    "frame_area",
    "place_rle",
    "reframe",
    "union_frame",
]

Frame = tuple[int, int, int, int]
"""``(x0, y0, x1, y1)``: columns ``x0..x1-1`` and rows ``y0..y1-1`` of the image."""


def _mask_api() -> Any:
    from pycocotools import mask as mask_utils

    return mask_utils


def frame_area(frame: Frame) -> int:
    return max(0, frame[2] - frame[0]) * max(0, frame[3] - frame[1])


def union_frame(frames: list[Frame]) -> Frame:
    """The smallest frame holding all ``frames``."""
    array = np.asarray(frames, dtype=np.int64)
    return (
        int(array[:, 0].min()),
        int(array[:, 1].min()),
        int(array[:, 2].max()),
        int(array[:, 3].max()),
    )


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """Compressed COCO RLE (``bytes`` counts) of an h x w mask; non-zero is foreground."""
    return _mask_api().encode(np.asfortranarray(mask, dtype=np.uint8))


def decode_framed(rle: dict[str, Any]) -> np.ndarray:
    """The h x w bool array of a compressed RLE."""
    return _mask_api().decode(_bytes_counts(rle)).astype(bool)


def counts_of(rle: dict[str, Any]) -> np.ndarray:
    """Run lengths (int64) of a COCO RLE: alternating 0s and 1s, column-major, 0s first.

    Decodes pycocotools' compressed string (LEB128-like: 5 bits per character, offset 48, a
    continuation bit 0x20, sign bit 0x10 in the last character, and every count from the
    third on stored as its difference with the count two places before) in a few numpy
    passes; list counts are returned as they are.
    """
    counts = rle["counts"]
    if not isinstance(counts, (str, bytes)):
        return np.asarray(counts, dtype=np.int64)
    raw = counts.encode("ascii") if isinstance(counts, str) else counts
    if not raw:
        return np.zeros(0, np.int64)
    chars = np.frombuffer(raw, np.uint8).astype(np.int64) - 48
    last = np.flatnonzero((chars & 0x20) == 0)  # the final character of each value
    first = np.concatenate([[0], last[:-1] + 1])
    lengths = last - first + 1
    shift = 5 * (np.arange(len(chars)) - np.repeat(first, lengths))
    values = np.add.reduceat((chars & 0x1F) << shift, first)
    negative = (chars[last] & 0x10) != 0
    values = np.where(negative, values | (-1 << (5 * lengths)), values)
    out = values.copy()
    out[1::2] = np.cumsum(values[1::2])
    if len(values) > 2:
        out[2::2] = np.cumsum(values[2::2])
    return out


def encode_counts(counts: np.ndarray, height: int, width: int) -> dict[str, Any]:
    """Compressed COCO RLE of run lengths (as :func:`counts_of` returns them)."""
    plain = {"size": [int(height), int(width)], "counts": [int(c) for c in counts]}
    return _mask_api().frPyObjects(plain, int(height), int(width))


def reframe(rle: dict[str, Any], source: Frame, target: Frame) -> dict[str, Any]:
    """The mask ``rle`` of frame ``source`` as a compressed RLE of frame ``target``.

    Pixels of ``target`` outside ``source`` are 0; pixels of ``source`` outside ``target``
    are dropped. Runs are split at column ends, shifted and clipped; no array of either
    frame's size is made.
    """
    th, tw = target[3] - target[1], target[2] - target[0]
    if th <= 0 or tw <= 0:
        raise ValueError(f"empty target frame {target}")
    if tuple(source) == tuple(target):
        return _bytes_counts(rle)
    if list(rle["size"]) != [source[3] - source[1], source[2] - source[0]]:
        raise ValueError(f"a {rle['size']} (h, w) RLE does not fit frame {source}")
    bounds = _ones_runs(rle, source, target)
    counts = np.diff(np.concatenate([[0], bounds, [th * tw]]))
    if len(counts) > 1 and counts[-1] == 0:
        counts = counts[:-1]
    return encode_counts(counts, th, tw)


def _ones_runs(rle: dict[str, Any], source: Frame, target: Frame) -> np.ndarray:
    """Boundaries ``[s0, e0, s1, e1, ...]`` of the runs of 1s of ``rle`` in ``target``."""
    sh = source[3] - source[1]
    th = target[3] - target[1]
    tw = target[2] - target[0]
    edges = np.concatenate([[0], np.cumsum(counts_of(rle))])
    starts, ends = edges[1:-1:2], edges[2::2]
    keep = ends > starts
    starts, ends = starts[keep], ends[keep]
    if not len(starts):
        return np.zeros(0, np.int64)
    # Split every run into one segment per source column it touches.
    first_col, last_col = starts // sh, (ends - 1) // sh
    per_run = last_col - first_col + 1
    run = np.repeat(np.arange(len(starts)), per_run)
    offset = np.arange(len(run)) - np.repeat(np.cumsum(per_run) - per_run, per_run)
    col = first_col[run] + offset
    top = np.where(col == first_col[run], starts[run] % sh, 0)
    bottom = np.where(col == last_col[run], (ends[run] - 1) % sh + 1, sh)
    # Shift to the target frame and clip.
    col = col + (source[0] - target[0])
    dy = source[1] - target[1]
    top = np.clip(top + dy, 0, th)
    bottom = np.clip(bottom + dy, 0, th)
    inside = (col >= 0) & (col < tw) & (bottom > top)
    col, top, bottom = col[inside], top[inside], bottom[inside]
    begin, end = col * th + top, col * th + bottom
    # Segments meeting at a column end continue one run: merge them (canonical RLE).
    if len(begin) > 1:
        joined = np.flatnonzero(begin[1:] == end[:-1])
        if len(joined):
            begin = np.delete(begin, joined + 1)
            end = np.delete(end, joined)
    return np.stack([begin, end], axis=1).reshape(-1)


def _bytes_counts(rle: dict[str, Any]) -> dict[str, Any]:
    counts = rle["counts"]
    if isinstance(counts, str):
        return {"size": list(rle["size"]), "counts": counts.encode("ascii")}
    if isinstance(counts, bytes):
        return rle
    height, width = rle["size"]
    return encode_counts(np.asarray(counts), height, width)


def place_rle(mask: np.ndarray, x0: int, y0: int, height: int, width: int) -> dict[str, Any]:
    """A compressed COCO RLE (``bytes`` counts) of an h x w mask pasted at ``(x0, y0)`` into
    an otherwise empty ``height`` x ``width`` image, without making the full-size array.

    The run boundaries of every column of ``mask`` are shifted to their column-major index in
    the full image; runs of zeros between columns then follow from the differences. Work and
    memory are proportional to ``mask``'s size, not the image's.
    """
    from pycocotools import mask as mask_utils

    h, w = mask.shape
    if x0 < 0 or y0 < 0 or x0 + w > width or y0 + h > height:
        raise ValueError(f"a {w}x{h} mask at ({x0}, {y0}) does not fit in {width}x{height}")
    columns = np.zeros((w, h + 2), np.int8)  # one row per image column, zero-padded
    columns[:, 1:-1] = mask.T
    col, row = np.nonzero(np.diff(columns, axis=1))
    bounds = (col.astype(np.int64) + x0) * height + (row + y0)
    # A run ending at the bottom of one column and one starting at the top of the next meet
    # at the same index: drop both so the encoding stays canonical (no empty runs).
    if len(bounds) > 1:
        same = np.flatnonzero(bounds[1:] == bounds[:-1])
        if len(same):
            bounds = np.delete(bounds, np.concatenate([same, same + 1]))
    counts = np.diff(np.concatenate([[0], bounds, [height * width]]))
    plain = {"size": [height, width], "counts": [int(c) for c in counts]}
    return mask_utils.frPyObjects(plain, height, width)
