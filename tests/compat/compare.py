"""Comparing what a client program got from the official package and from tijeras.

Types must be the same all the way down (containers, NumPy dtypes and shapes, tensors, the
element types of record lists such as ``bbox``); values within the tolerances of
:mod:`helpers.parity`: floats within ``REL_TOL`` of the largest magnitude, masks with IoU of
at least ``MASK_IOU`` (pixels whose logit is within float rounding of the threshold may fall
either way), everything-mode records matched one to one (:func:`helpers.records.compare`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from helpers.parity import REL_TOL, assert_close
from helpers.records import compare as compare_records

MASK_IOU = 0.99


def _is_records(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and isinstance(value[0], dict)
        and "segmentation" in value[0]
    )


def assert_same(ours: Any, ref: Any, where: str = "result") -> None:
    """Same structure and types as ``ref``, values within the tolerances above."""
    assert type(ours) is type(ref), f"{where}: {type(ours).__name__} != {type(ref).__name__}"
    if isinstance(ref, torch.Tensor):
        assert_same(ours.detach().cpu().numpy(), ref.detach().cpu().numpy(), where)
    elif isinstance(ref, np.ndarray):
        assert ours.dtype == ref.dtype, f"{where}: dtype {ours.dtype} != {ref.dtype}"
        assert ours.shape == ref.shape, f"{where}: shape {ours.shape} != {ref.shape}"
        if ref.dtype == np.bool_ or (ref.dtype.kind == "f" and _binary(ref) and _binary(ours)):
            assert_masks_agree(ours, ref, where)
        elif ref.dtype.kind in "iu" and ref.ndim == 2:
            agree = float((ours == ref).mean())
            assert agree >= MASK_IOU, f"{where}: {agree:.4f} of the label pixels agree"
        elif ref.size:
            assert_close(ours, ref, where, REL_TOL)
    elif isinstance(ref, dict):
        assert list(ours) == list(ref), f"{where}: keys {list(ours)} != {list(ref)}"
        for key in ref:
            assert_same(ours[key], ref[key], f"{where}[{key!r}]")
    elif _is_records(ref):
        assert_records_same(ours, ref, where)
    elif isinstance(ref, (list, tuple)):
        assert len(ours) == len(ref), f"{where}: length {len(ours)} != {len(ref)}"
        for i, (o, r) in enumerate(zip(ours, ref)):
            assert_same(o, r, f"{where}[{i}]")
    elif isinstance(ref, float):
        assert abs(ours - ref) <= REL_TOL * max(1.0, abs(ref)), f"{where}: {ours} != {ref}"
    else:
        assert ours == ref, f"{where}: {ours!r} != {ref!r}"


def _binary(array: np.ndarray) -> bool:
    return bool(np.isin(array, (0.0, 1.0)).all())


def assert_masks_agree(ours: np.ndarray, ref: np.ndarray, where: str) -> None:
    """Every H x W mask of two ... x H x W stacks with IoU >= ``MASK_IOU``."""
    o = ours.reshape(-1, *ours.shape[-2:]) > 0.5
    r = ref.reshape(-1, *ref.shape[-2:]) > 0.5
    for i, (a, b) in enumerate(zip(o, r)):
        union = (a | b).sum()
        iou = 1.0 if union == 0 else (a & b).sum() / union
        assert iou >= MASK_IOU, f"{where}: mask {i} has IoU {iou:.4f}"


def record_types(record: dict[str, Any]) -> dict[str, Any]:
    """The type of every value of an everything-mode record (and of list elements)."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, list):
            out[key] = (list, tuple(_element_type(v) for v in value))
        elif isinstance(value, np.ndarray):
            out[key] = (np.ndarray, value.dtype, value.ndim)
        elif isinstance(value, dict):
            out[key] = (dict, tuple((k, type(v)) for k, v in value.items()))
        else:
            out[key] = type(value)
    return out


def _element_type(value: Any) -> Any:
    if isinstance(value, list):
        return (list, tuple(type(v) for v in value))
    return type(value)


def assert_records_same(ours: list[dict], ref: list[dict], where: str) -> None:
    """Everything-mode records: same keys and value types, masks matched one to one."""
    assert len(ours) == len(ref), f"{where}: {len(ours)} records != {len(ref)}"
    for i, (o, r) in enumerate(zip(ours, ref)):
        assert list(o) == list(r), f"{where}[{i}]: keys {list(o)} != {list(r)}"
        assert record_types(o) == record_types(r), (
            f"{where}[{i}]: types {record_types(o)} != {record_types(r)}"
        )
    compare_records(ref, ours)
