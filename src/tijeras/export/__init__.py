"""Export of a model's image encoder and prompt decoder as standalone graphs (ONNX).

``tijeras export MODEL --format onnx`` on the command line; in Python
:func:`export_onnx` (needs the ``export`` extra: onnx, onnxscript, onnxruntime). The graphs and
their conventions are described in :mod:`tijeras.export.graphs`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .onnx import ExportedGraph, export_onnx

__all__ = ["ExportedGraph", "export_onnx"]


def __getattr__(name: str) -> Any:
    # torch and the exporter load only when an export is asked for
    if name in __all__:
        from . import onnx

        return getattr(onnx, name)
    raise AttributeError(name)
