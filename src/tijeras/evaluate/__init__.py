"""Interactive-segmentation evaluation: datasets, the click protocol, metrics and plots."""

from __future__ import annotations

from .clicks import Click, Clicker, next_click
from .dataset import ObjectSample, open_dataset, split_samples
from .metrics import format_table, iou, number_of_clicks, summarize
from .runner import EvalResult, evaluate

__all__ = [
    "Click",
    "Clicker",
    "EvalResult",
    "ObjectSample",
    "evaluate",
    "format_table",
    "iou",
    "next_click",
    "number_of_clicks",
    "open_dataset",
    "split_samples",
    "summarize",
]
