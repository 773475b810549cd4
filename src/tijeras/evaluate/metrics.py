"""IoU with ignored pixels, number of clicks (NoC) and the summary of an evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

REPORTED_CLICKS = (1, 2, 3, 5, 10)
NOC_THRESHOLDS = (0.85, 0.90)


def iou(gt: np.ndarray, pred: np.ndarray, ignore: np.ndarray | None = None) -> float:
    """Intersection over union of two H x W bool masks, ignored pixels left out.

    Two masks that are both empty (outside the ignored pixels) have IoU 1.
    """
    valid = None if ignore is None else ~ignore
    inter = gt & pred
    union = gt | pred
    if valid is not None:
        inter = inter & valid
        union = union & valid
    n_union = int(np.count_nonzero(union))
    if n_union == 0:
        return 1.0
    return int(np.count_nonzero(inter)) / n_union


def number_of_clicks(ious: Sequence[float], threshold: float, max_clicks: int) -> int:
    """Clicks needed to reach ``threshold`` IoU (``ious[k]`` is the IoU after k+1 clicks).

    An object that never reaches it counts ``max_clicks``, as in the literature.
    """
    for k, value in enumerate(ious[:max_clicks]):
        if value >= threshold:
            return k + 1
    return max_clicks


def reached(ious: Sequence[float], threshold: float, max_clicks: int) -> bool:
    """Whether the IoU reached ``threshold`` within ``max_clicks`` clicks."""
    return any(v >= threshold for v in ious[:max_clicks])


def miou_curve(all_ious: Sequence[Sequence[float]], max_clicks: int) -> list[float]:
    """Mean IoU over objects after 1..max_clicks clicks.

    An object whose clicks stopped early (no error left) keeps its last IoU.
    """
    if not all_ious:
        return []
    table = np.zeros((len(all_ious), max_clicks))
    for i, ious in enumerate(all_ious):
        values = list(ious[:max_clicks]) or [0.0]
        values += [values[-1]] * (max_clicks - len(values))
        table[i] = values
    return [float(v) for v in table.mean(axis=0)]


def summarize(
    all_ious: Sequence[Sequence[float]],
    box_ious: Sequence[float] | None,
    max_clicks: int,
) -> dict[str, Any]:
    """The benchmark figures of one evaluation.

    Args:
        all_ious: per object, its IoU after each click.
        box_ious: per object, the IoU with its tight box as the prompt (None: not measured).
        max_clicks: the click budget.

    Returns:
        ``objects``, ``max_clicks``, ``noc@85``, ``noc@90``, ``failed@85``/``failed@90``
        (objects that never reach the threshold), ``miou@k`` for k in 1, 2, 3, 5, 10 (up to
        ``max_clicks``), ``miou_curve`` (after 1..max_clicks clicks) and ``box_miou``.
    """
    curve = miou_curve(all_ious, max_clicks)
    out: dict[str, Any] = {"objects": len(all_ious), "max_clicks": max_clicks}
    for thr in NOC_THRESHOLDS:
        key = f"{round(thr * 100)}"
        nocs = [number_of_clicks(v, thr, max_clicks) for v in all_ious]
        out[f"noc@{key}"] = float(np.mean(nocs)) if nocs else float("nan")
        out[f"failed@{key}"] = sum(not reached(v, thr, max_clicks) for v in all_ious)
    for k in REPORTED_CLICKS:
        if k <= max_clicks and curve:
            out[f"miou@{k}"] = curve[k - 1]
    out["miou_curve"] = curve
    if box_ious is not None:
        out["box_miou"] = float(np.mean(box_ious)) if len(box_ious) else float("nan")
    return out


def format_table(summary: dict[str, Any], title: str = "") -> str:
    """A plain-text table of a summary, for the terminal."""
    rows = [("objects", str(summary["objects"]))]
    for key in ("noc@85", "noc@90"):
        rows.append((key.upper().replace("NOC", "NoC"), f"{summary[key]:.2f}"))
    n_failed = summary["failed@90"]
    rows.append((f"never >= 90% (in {summary['max_clicks']} clicks)", str(n_failed)))
    for k in REPORTED_CLICKS:
        key = f"miou@{k}"
        if key in summary:
            rows.append((f"mIoU @ {k} click{'s' if k > 1 else ''}", f"{summary[key]:.4f}"))
    if "box_miou" in summary:
        rows.append(("mIoU, box prompt", f"{summary['box_miou']:.4f}"))
    width = max(len(r[0]) for r in rows)
    lines = [title] if title else []
    lines += [f"{name.ljust(width)}  {value}" for name, value in rows]
    return "\n".join(lines)
