"""Run-length encodings of masks, compatible with pycocotools and SAM's ``output_mode``.

Two forms are produced, both in COCO's column-major (Fortran) pixel order:

* uncompressed: ``{"size": [H, W], "counts": [int, ...]}``, the lengths of alternating
  runs of 0s and 1s, starting with a run of 0s (of length 0 when the first pixel is 1);
* compressed: ``{"size": [H, W], "counts": str}``, pycocotools' LEB128-like string, which is
  what COCO result files store. Its counts are ``str`` so the dict is JSON-serialisable.

pycocotools is imported only by the functions that need it (compressed RLEs), and torch
only by :func:`masks_to_uncompressed_rle`, so importing this module stays cheap.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import cv2
import numpy as np

from tijeras.errors import TijerasError

if TYPE_CHECKING:
    import torch

__all__ = [
    "coco_rle",
    "coco_rle_one",
    "decode_coco_rle",
    "masks_to_uncompressed_rle",
    "rle_area",
    "uncompressed_rle_to_mask",
    "uncompressed_to_coco_rle",
]

MaskBatch: TypeAlias = "np.ndarray | torch.Tensor"
"""A B x H x W stack of masks: a numpy array or a torch tensor (non-zero is foreground)."""


# --- uncompressed RLE ----------------------------------------------------------------------


def masks_to_uncompressed_rle(masks: torch.Tensor) -> list[dict[str, Any]]:
    """Encode a batch of masks as uncompressed COCO RLEs, vectorised over the whole batch.

    The change points of all masks are found at once on the masks' device; only those
    indices are copied to the CPU.

    Args:
        masks: B x H x W tensor on any device (or numpy array); bool, or numbers where
            non-zero is foreground.

    Returns:
        B dicts ``{"size": [H, W], "counts": [int, ...]}`` with counts in column-major order,
        identical to what pycocotools produces for the same masks.

    Raises:
        TijerasError: If ``masks`` is not B x H x W or has zero height or width.
    """
    import torch

    masks = _as_bool_tensor(masks)
    batch, height, width = masks.shape
    if batch == 0:
        return []
    flat = masks.transpose(1, 2).reshape(batch, height * width)
    change_rows, change_cols = torch.nonzero(flat[:, 1:] != flat[:, :-1], as_tuple=True)
    per_mask = torch.bincount(change_rows, minlength=batch).cpu().numpy()
    ends = np.split(change_cols.cpu().numpy() + 1, np.cumsum(per_mask)[:-1])
    starts_with_one = flat[:, 0].cpu().numpy()
    size = [int(height), int(width)]
    return [
        {"size": list(size), "counts": _run_lengths(end, height * width, bool(first))}
        for end, first in zip(ends, starts_with_one, strict=True)
    ]


def uncompressed_rle_to_mask(rle: Mapping[str, Any]) -> np.ndarray:
    """Decode an uncompressed COCO RLE.

    Args:
        rle: ``{"size": [H, W], "counts": [int, ...]}`` in column-major order.

    Returns:
        H x W bool array.

    Raises:
        TijerasError: If a key is missing or the counts do not add up to H * W.
    """
    height, width = _rle_size(rle)
    counts = _checked_counts(rle, height * width)
    values = np.arange(counts.size) % 2 == 1
    column_major = np.repeat(values, counts)
    return column_major.reshape(width, height).T


def rle_area(rle: Mapping[str, Any]) -> int:
    """Number of foreground pixels of an uncompressed RLE: the sum of its odd-index counts.

    Args:
        rle: ``{"size": [H, W], "counts": [int, ...]}``.

    Returns:
        The foreground pixel count.
    """
    counts = _rle_key(rle, "counts")
    if isinstance(counts, (str, bytes)):
        raise TijerasError("rle_area needs an uncompressed RLE (list counts), got string counts")
    return int(sum(counts[1::2]))


# --- compressed COCO RLE -------------------------------------------------------------------

PYCOCOTOOLS_LIST_LIMIT = 255
"""Longest list some pycocotools functions take: ``mask.area`` of a list stores its length in a
uint8 (pycocotools 2.0.11 with numpy 2 raises ``OverflowError`` above it)."""


def coco_rle_areas(rles: Sequence[Mapping[str, Any]]) -> list[int]:
    """Foreground pixel counts of compressed COCO RLEs, for any number of them.

    Args:
        rles: dicts ``{"size": [H, W], "counts": str | bytes}``.

    Returns:
        One area per RLE, in order.
    """
    mask_api = _pycocotools_mask()
    areas: list[int] = []
    for start in range(0, len(rles), PYCOCOTOOLS_LIST_LIMIT):
        chunk = [_with_bytes_counts(r) for r in rles[start : start + PYCOCOTOOLS_LIST_LIMIT]]
        areas.extend(int(a) for a in mask_api.area(chunk))
    return areas


def _with_bytes_counts(rle: Mapping[str, Any]) -> dict[str, Any]:
    counts = rle["counts"]
    return {"size": rle["size"], "counts": counts.encode() if isinstance(counts, str) else counts}


def coco_rle(masks: MaskBatch) -> list[dict[str, Any]]:
    """Encode a batch of masks as compressed COCO RLEs with pycocotools.

    The masks are laid out once as a Fortran-ordered H x W x B uint8 array (transposed on
    the GPU for CUDA tensors, with OpenCV otherwise) and encoded by a single
    ``pycocotools.mask.encode`` call, which is faster than compressing uncompressed RLEs.

    Args:
        masks: B x H x W numpy array or torch tensor (any device); non-zero is foreground.

    Returns:
        B dicts ``{"size": [H, W], "counts": str}``; ``[]`` for an empty batch.

    Raises:
        TijerasError: If ``masks`` is not B x H x W or pycocotools is not installed.
    """
    column_major = _column_major_uint8(masks)
    if column_major.shape[0] == 0:
        return []
    encoded = _pycocotools_mask().encode(column_major.transpose(2, 1, 0))
    return [_with_str_counts(rle) for rle in encoded]


def uncompressed_to_coco_rle(rles: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Compress uncompressed RLEs (as from :func:`masks_to_uncompressed_rle`) for COCO.

    This is the fast path when the uncompressed RLEs already exist: no mask is rebuilt.

    Args:
        rles: Dicts ``{"size": [H, W], "counts": [int, ...]}``.

    Returns:
        One dict ``{"size": [H, W], "counts": str}`` per input RLE.

    Raises:
        TijerasError: If an RLE is malformed or pycocotools is not installed.
    """
    mask_api = _pycocotools_mask() if rles else None
    compressed = []
    for rle in rles:
        height, width = _rle_size(rle)
        counts = _checked_counts(rle, height * width)
        plain = {"size": [height, width], "counts": counts.tolist()}
        compressed.append(_with_str_counts(mask_api.frPyObjects(plain, height, width)))
    return compressed


def coco_rle_one(mask: np.ndarray | torch.Tensor) -> dict[str, Any]:
    """Encode one H x W mask as a compressed COCO RLE.

    Args:
        mask: H x W numpy array or torch tensor; non-zero is foreground.

    Returns:
        ``{"size": [H, W], "counts": str}``.
    """
    if len(np.shape(mask)) != 2:
        raise TijerasError(f"mask must be H x W, got shape {tuple(mask.shape)}")
    return coco_rle(mask[None])[0]


def decode_coco_rle(rle: Mapping[str, Any]) -> np.ndarray:
    """Decode a COCO RLE, compressed (``str`` or ``bytes`` counts) or uncompressed (a list).

    Args:
        rle: ``{"size": [H, W], "counts": ...}``.

    Returns:
        H x W bool array.

    Raises:
        TijerasError: If a key is missing or the counts are malformed.
    """
    counts = _rle_key(rle, "counts")
    if not isinstance(counts, (str, bytes)):
        return uncompressed_rle_to_mask(rle)
    height, width = _rle_size(rle)
    raw = counts.encode("ascii") if isinstance(counts, str) else counts
    try:
        decoded = _pycocotools_mask().decode({"size": [height, width], "counts": raw})
    except Exception as exc:  # pycocotools raises bare Exceptions on bad input
        raise TijerasError(f"cannot decode COCO RLE of size {[height, width]}: {exc}") from exc
    return decoded.astype(bool)


# --- helpers -------------------------------------------------------------------------------


def _run_lengths(ends: np.ndarray, total: int, starts_with_one: bool) -> list[int]:
    """Run lengths from the (exclusive) end index of every run but the last."""
    bounds = np.concatenate(([0], ends, [total]))
    lengths = np.diff(bounds).tolist()
    return [0, *lengths] if starts_with_one else lengths


def _as_bool_tensor(masks: Any) -> torch.Tensor:
    """Validate a B x H x W tensor and return it as bool (non-zero is foreground)."""
    import torch

    if not isinstance(masks, torch.Tensor):
        masks = torch.as_tensor(np.asarray(masks))
    masks = masks.detach()
    _check_batch_shape(tuple(masks.shape))
    return masks if masks.dtype == torch.bool else masks != 0


def _column_major_uint8(masks: Any) -> np.ndarray:
    """B x H x W masks as a C-ordered B x W x H uint8 array of 0s and 1s.

    Its memory layout is that of the Fortran-ordered H x W x B array pycocotools encodes.
    """
    if _is_tensor(masks) and masks.device.type != "cpu":
        column_major = _as_bool_tensor(masks).transpose(1, 2).contiguous()
        return column_major.view(sys.modules["torch"].uint8).cpu().numpy()
    if _is_tensor(masks):
        masks = _as_bool_tensor(masks).numpy()
    array = np.asarray(masks)
    _check_batch_shape(array.shape)
    rows = (array if array.dtype == bool else array != 0).view(np.uint8)
    out = np.empty((array.shape[0], array.shape[2], array.shape[1]), np.uint8)
    for source, target in zip(rows, out, strict=True):
        cv2.transpose(np.ascontiguousarray(source), target)  # much faster than numpy's copy
    return out


def _check_batch_shape(shape: tuple[int, ...]) -> None:
    """Raise a TijerasError unless ``shape`` is B x H x W with H, W > 0."""
    if len(shape) != 3 or (shape[0] > 0 and (shape[1] == 0 or shape[2] == 0)):
        raise TijerasError(f"masks must be B x H x W with H, W > 0, got shape {shape}")


def _is_tensor(value: Any) -> bool:
    """Whether ``value`` is a torch tensor; never imports torch (unloaded, nothing is one)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _rle_key(rle: Mapping[str, Any], key: str) -> Any:
    if not isinstance(rle, Mapping) or key not in rle:
        raise TijerasError(f"RLE must be a dict with keys 'size' and 'counts', missing {key!r}")
    return rle[key]


def _rle_size(rle: Mapping[str, Any]) -> tuple[int, int]:
    """The (H, W) of an RLE dict, validated."""
    size = _rle_key(rle, "size")
    try:
        height, width = (int(value) for value in size)
    except (TypeError, ValueError):
        height = width = -1
    if height < 0 or width < 0:
        raise TijerasError(f"RLE 'size' must be [H, W] with H, W >= 0, got {size!r}")
    return height, width


def _checked_counts(rle: Mapping[str, Any], total: int) -> np.ndarray:
    """The list counts of an uncompressed RLE as int64, checked to be >= 0 and sum to total."""
    counts = _rle_key(rle, "counts")
    array = np.asarray(counts if isinstance(counts, (list, tuple, np.ndarray)) else [-1])
    if array.ndim != 1 or array.dtype.kind not in "iu" or (array < 0).any():
        raise TijerasError(f"RLE counts must be a list of ints >= 0, got {_preview(counts)}")
    if int(array.sum()) != total:
        raise TijerasError(
            f"RLE counts must sum to H * W = {total} for size {list(rle['size'])}, "
            f"got {array.size} counts summing to {int(array.sum())}"
        )
    return array.astype(np.int64)


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _with_str_counts(rle: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a pycocotools RLE with ``bytes`` counts turned into ``str``."""
    counts = rle["counts"]
    text = counts.decode("ascii") if isinstance(counts, bytes) else counts
    return {"size": [int(v) for v in rle["size"]], "counts": text}


def _pycocotools_mask() -> Any:
    """The ``pycocotools.mask`` module, or a TijerasError saying how to install it."""
    try:
        from pycocotools import mask as mask_api
    except ImportError as exc:
        raise TijerasError(
            "compressed COCO RLEs need pycocotools: pip install pycocotools"
        ) from exc
    return mask_api
