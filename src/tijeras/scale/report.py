"""``tijeras scale-report``: what a labelling run's index says, and a histogram of masks.

Reads the index (the newest row per image, :func:`~tijeras.scale.index.read_index`), counts
images done, done earlier (skipped) and failed with their reasons, summarises masks and
seconds per image, and draws the masks-per-image histogram as a PNG.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Report", "masks_histogram", "summarise"]


@dataclass(frozen=True)
class Report:
    """A summary of an output folder's index.

    Attributes:
        images: images with a row.
        done: images labelled (by any run: ``done`` and ``skipped`` rows).
        failed: images whose newest row is a failure.
        reasons: failure reasons with their counts, most frequent first.
        masks: total masks of the labelled images.
        masks_per_image: (min, median, mean, max) over labelled images.
        seconds_per_image: mean labelling seconds of the labelled images.
        models: model names and options hashes seen, with image counts.
        runs: how many runs wrote rows.
    """

    images: int
    done: int
    failed: int
    reasons: tuple[tuple[str, int], ...]
    masks: int
    masks_per_image: tuple[float, float, float, float]
    seconds_per_image: float
    models: tuple[tuple[str, int], ...]
    runs: int

    def lines(self, top: int = 10) -> list[str]:
        low, median, mean, high = self.masks_per_image
        out = [
            f"images: {self.images}  done: {self.done}  failed: {self.failed}  (runs: {self.runs})",
            (
                f"masks: {self.masks}  per image: min {low:g}, median {median:g}, "
                f"mean {mean:.1f}, max {high:g}"
            ),
            f"labelling: {self.seconds_per_image:.3f} s per image (mean)",
        ]
        out += [f"model {name}: {count} images" for name, count in self.models]
        if self.reasons:
            out.append("failed:")
            out += [f"  {count} x {reason}" for reason, count in self.reasons[:top]]
            if len(self.reasons) > top:
                rest = sum(count for _, count in self.reasons[top:])
                out.append(f"  ... {rest} more with {len(self.reasons) - top} other reasons")
        return out


def summarise(table: pa.Table) -> Report:
    """The :class:`Report` of an index table (one row per image)."""
    import numpy as np

    status = np.asarray(table.column("status").to_pylist(), dtype=object)
    labelled = (status == "done") | (status == "skipped")
    masks = table.column("masks").to_numpy()[labelled]
    seconds = table.column("seconds").to_numpy()[labelled]
    failed = status == "failed"
    reasons = Counter(error for error, bad in zip(table.column("error").to_pylist(), failed) if bad)
    models = Counter(
        f"{model} (options {digest})"
        for model, digest, ok in zip(
            table.column("model").to_pylist(), table.column("options_hash").to_pylist(), labelled
        )
        if ok
    )
    stats = (
        (float(masks.min()), float(np.median(masks)), float(masks.mean()), float(masks.max()))
        if masks.size
        else (0.0, 0.0, 0.0, 0.0)
    )
    return Report(
        images=table.num_rows,
        done=int(labelled.sum()),
        failed=int(failed.sum()),
        reasons=tuple(reasons.most_common()),
        masks=int(masks.sum()),
        masks_per_image=stats,
        seconds_per_image=float(seconds.mean()) if seconds.size else 0.0,
        models=tuple(models.most_common()),
        runs=len(set(table.column("run_id").to_pylist())),
    )


def masks_histogram(table: pa.Table, path: Path, title: str = "") -> None:
    """Draw the histogram of masks per labelled image as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    status = np.asarray(table.column("status").to_pylist(), dtype=object)
    masks = table.column("masks").to_numpy()[(status == "done") | (status == "skipped")]
    figure, axes = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    try:
        high = int(masks.max()) if masks.size else 1
        bins = np.arange(0, high + 2) - 0.5 if high <= 60 else 60
        axes.hist(masks, bins=bins, color="#3b7dd8", edgecolor="white")
        axes.set_xlabel("masks per image")
        axes.set_ylabel("images")
        axes.set_title(title or f"{masks.size} labelled images, {int(masks.sum())} masks")
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        from tijeras.scale.files import atomic_file

        with atomic_file(path) as temp:
            figure.savefig(temp, format="png")
    finally:
        plt.close(figure)
