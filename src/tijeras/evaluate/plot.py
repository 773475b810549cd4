"""PNG plots (matplotlib, Agg backend): mIoU against clicks, and training curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_miou_curves(
    curves: Mapping[str, Sequence[float]], path: str | Path, title: str = ""
) -> Path:
    """Plot mIoU after 1..N clicks, one line per label, with the 85% and 90% levels.

    Args:
        curves: label -> mIoU after 1, 2, ... clicks.
        path: the PNG to write (folders are created).
        title: the plot title.
    """
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for label, curve in curves.items():
        ax.plot(range(1, len(curve) + 1), curve, marker="o", markersize=3, label=label)
    for level in (0.85, 0.90):
        ax.axhline(level, color="grey", linestyle=":", linewidth=0.8)
    ax.set_xlabel("clicks")
    ax.set_ylabel("mIoU")
    ax.set_ylim(0.0, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(title or "mIoU against the number of clicks")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_training(rows: Sequence[Mapping[str, Any]], path: str | Path, title: str = "") -> Path:
    """Plot training losses (per logged step) and validation metrics (per epoch).

    Args:
        rows: metric records as written to the training log: ``kind`` is ``"train"`` (with
            ``step``, ``loss``, ``focal``, ``dice``, ``iou_mse``) or ``"val"`` (with ``epoch``,
            ``miou@1``, ``miou@3``, ``box_miou``, ``noc@90``).
        path: the PNG to write.
    """
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    train = [r for r in rows if r.get("kind") == "train"]
    val = [r for r in rows if r.get("kind") == "val"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=90)
    steps = [r["step"] for r in train]
    for key in ("loss", "focal", "dice", "iou_mse"):
        if train and key in train[0]:
            left.plot(steps, [r[key] for r in train], label=key, linewidth=1)
    left.set_xlabel("step")
    left.set_ylabel("training loss")
    left.set_yscale("log")
    left.grid(alpha=0.3)
    if train:
        left.legend()
    epochs = [r["epoch"] for r in val]
    for key in ("miou@1", "miou@3", "miou@5", "box_miou"):
        if val and key in val[0]:
            right.plot(epochs, [r[key] for r in val], marker="o", markersize=3, label=key)
    right.set_xlabel("epoch")
    right.set_ylabel("validation mIoU")
    right.set_ylim(0.0, 1.0)
    right.grid(alpha=0.3)
    if val:
        right.legend(loc="lower right")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
