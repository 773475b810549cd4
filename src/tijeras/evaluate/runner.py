"""Run the interactive-segmentation benchmark with any model behind a :class:`Predictor`.

Per object: up to ``max_clicks`` simulated clicks (:mod:`tijeras.evaluate.clicks`), all clicks
so far given as point prompts together with the previous low-res logits as the mask prompt;
the first click asks for SAM's three candidates and keeps the one with the highest predicted
IoU, later clicks ask for a single mask. Separately, the object's tight bounding box is given
alone as the prompt (single mask).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..types import ImageEmbedding
from .clicks import Click, Clicker
from .dataset import ObjectSample
from .metrics import iou, summarize

EmbeddingFor = Callable[[ObjectSample], ImageEmbedding]


@dataclass
class ObjectResult:
    """The outcome for one object: IoU after each click, the clicks, and the box IoU."""

    name: str
    ious: list[float] = field(default_factory=list)
    clicks: list[Click] = field(default_factory=list)
    box_iou: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ious": [round(v, 6) for v in self.ious],
            "clicks": [[c.x, c.y, c.label] for c in self.clicks],
            "box_iou": None if self.box_iou is None else round(self.box_iou, 6),
        }


@dataclass
class EvalResult:
    """Per-object results and their summary (see :func:`tijeras.evaluate.metrics.summarize`)."""

    objects: list[ObjectResult]
    summary: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "info": self.info,
            "summary": self.summary,
            "objects": [o.to_json() for o in self.objects],
        }

    def save_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")
        return path


def simulate_clicks(
    predictor: Any, gt: np.ndarray, ignore: np.ndarray | None, max_clicks: int
) -> tuple[list[float], list[Click]]:
    """Simulate up to ``max_clicks`` clicks on the predictor's current image.

    Args:
        predictor: a :class:`tijeras.Predictor` with the image set.
        gt: H x W bool object mask.
        ignore: H x W bool ignored pixels, or None.
        max_clicks: the click budget.

    Returns:
        IoU after each click (it stops early only when no error is left) and the clicks.
    """
    clicker = Clicker(gt, ignore)
    pred: np.ndarray | None = None
    logits: np.ndarray | None = None
    ious: list[float] = []
    for k in range(max_clicks):
        if clicker.click(pred) is None:
            break
        coords, labels = clicker.prompt()
        first = k == 0
        out = predictor.predict(coords, labels, mask_input=logits, multimask_output=first)
        best = int(np.argmax(out.scores)) if first else 0
        pred = np.asarray(out.masks[best], dtype=bool)
        logits = np.asarray(out.low_res_logits[best : best + 1], dtype=np.float32)
        ious.append(iou(gt, pred, ignore))
    return ious, clicker.clicks


def box_iou(predictor: Any, gt: np.ndarray, ignore: np.ndarray | None) -> float:
    """IoU of the single mask predicted from the object's tight box (x0, y0, x1 + 1, y1 + 1)."""
    from ..io import mask_to_box

    target = gt if ignore is None else gt & ~ignore
    box = np.asarray(mask_to_box(target), dtype=np.float64)
    out = predictor.predict(box=box, multimask_output=False)
    return iou(gt, np.asarray(out.masks[0], dtype=bool), ignore)


def evaluate(
    predictor: Any,
    samples: Sequence[ObjectSample],
    *,
    max_clicks: int = 20,
    with_box: bool = True,
    embedding_for: EmbeddingFor | None = None,
    progress: bool = True,
    desc: str = "evaluating",
) -> EvalResult:
    """Evaluate a predictor on a list of objects.

    Args:
        predictor: a :class:`tijeras.Predictor` (any model family).
        samples: the objects (see :func:`tijeras.evaluate.dataset.open_dataset`).
        max_clicks: the click budget per object (20 in the literature).
        with_box: also measure the IoU with the tight box as the prompt.
        embedding_for: returns a fresh embedding for a sample instead of running the encoder
            (training validation with cached embeddings).
        progress: show a tqdm progress bar.

    Returns:
        The per-object results and their summary.
    """
    from tqdm import tqdm

    if max_clicks < 1:
        raise ValueError(f"max_clicks must be at least 1, got {max_clicks}")
    ordered = sorted(samples, key=lambda s: (str(s.image_path), s.name))
    results = []
    current: Path | None = None
    for sample in tqdm(ordered, desc=desc, unit="obj", disable=not progress, leave=False):
        image, gt, ignore = sample.load()
        if embedding_for is not None:
            predictor.set_embedding(embedding_for(sample))
        elif sample.image_path != current:
            predictor.set_image(image)
        current = sample.image_path
        ious, clicks = simulate_clicks(predictor, gt, ignore, max_clicks)
        result = ObjectResult(name=sample.name, ious=ious, clicks=clicks)
        if with_box:
            result.box_iou = box_iou(predictor, gt, ignore)
        results.append(result)
    summary = summarize(
        [r.ious for r in results],
        [r.box_iou for r in results] if with_box else None,
        max_clicks,
    )
    return EvalResult(objects=results, summary=summary)


def result_from_json(data: dict[str, Any]) -> EvalResult:
    """Rebuild an :class:`EvalResult` from :meth:`EvalResult.to_json` output."""
    objects = [
        ObjectResult(
            name=o["name"],
            ious=list(o["ious"]),
            clicks=[Click(x, y, bool(label)) for x, y, label in o["clicks"]],
            box_iou=o.get("box_iou"),
        )
        for o in data["objects"]
    ]
    return EvalResult(objects=objects, summary=dict(data["summary"]), info=dict(data["info"]))


__all__ = [
    "EvalResult",
    "ObjectResult",
    "box_iou",
    "evaluate",
    "result_from_json",
    "simulate_clicks",
]
