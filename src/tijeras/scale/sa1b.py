"""Per-image label files in the SA-1B layout, with a first line that says how they were made.

One JSON document per image, as in Meta's SA-1B release::

    {"tijeras": {"options_hash": ..., "model": ..., "source": ..., "masks": N, "seconds": ...},
    "image": {"image_id": ..., "width": W, "height": H, "file_name": "photo.jpg"},
    "annotations": [{"id", "segmentation": {"size": [H, W], "counts": "..."}, "bbox": [x, y, w, h],
                     "area", "predicted_iou", "stability_score", "point_coords": [[x, y]],
                     "crop_box": [x, y, w, h]}, ...]}

Readers of SA-1B use ``image`` and ``annotations`` and are not bothered by the extra key. The
``tijeras`` record is written alone on the first line and the ``image`` record on the second,
so :func:`read_header` learns whether an output is done, and with which options, from the
file's first few hundred bytes.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["HEAD_BYTES", "OutputHeader", "image_id", "read_header", "sa1b_document"]

HEAD_BYTES = 64 * 1024
"""How much of a file :func:`read_header` may need (the first two lines)."""

_FIRST = '{"tijeras": '
_FIELDS = (
    "segmentation",
    "bbox",
    "area",
    "predicted_iou",
    "stability_score",
    "point_coords",
    "crop_box",
)


@dataclass(frozen=True)
class OutputHeader:
    """How an output was made (its first line) and the size of its image (its second).

    Attributes:
        options_hash: :meth:`~tijeras.scale.job.LabelJob.options_hash` of the run that made it.
        model: the model's registered name.
        source: the image it labels (path or URI).
        masks: the number of annotations.
        seconds: labelling time of the image (model and encoding, not reading).
        run: the id of the run that made it.
        width: image width W in pixels.
        height: image height H in pixels.
    """

    options_hash: str
    model: str
    source: str
    masks: int
    seconds: float
    run: str
    width: int = 0
    height: int = 0


def image_id(name: str) -> int:
    """A stable id for an output name (below 2**53, so exact in every JSON reader)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big") >> 11


def sa1b_document(
    records: Sequence[Mapping[str, Any]],
    header: OutputHeader,
    name: str,
    file_name: str,
) -> bytes:
    """The file of one image: the header, the image record and one annotation per record.

    Args:
        records: Meta's everything-mode records with a COCO RLE ``segmentation``; keys beyond
            SA-1B's (a text labeller's ``phrase``, say) are kept.
        header: how it was made; ``width`` and ``height`` are the image's.
        name: the output name (for the image id).
        file_name: the image's file name.
    """
    head = {k: v for k, v in asdict(header).items() if k not in ("width", "height")}
    image = {
        "image_id": image_id(name),
        "width": header.width,
        "height": header.height,
        "file_name": file_name,
    }
    annotations = [_annotation(index, record) for index, record in enumerate(records)]
    text = (
        _FIRST
        + json.dumps(head, allow_nan=False)
        + ',\n"image": '
        + json.dumps(image, allow_nan=False)
        + ',\n"annotations": '
        + json.dumps(annotations, allow_nan=False)
        + "}\n"
    )
    return text.encode("utf-8")


def read_header(head: bytes) -> OutputHeader | None:
    """The header of an output from its first bytes, or None when they are not one (a file
    of another program, or of an older layout)."""
    lines = head.split(b"\n", 2)
    if len(lines) < 3 or not lines[0].startswith(_FIRST.encode()):
        return None
    try:
        first = json.loads(lines[0][len(_FIRST) :].rstrip(b",").decode("utf-8"))
        second = lines[1].decode("utf-8")
        image = json.loads(second[second.index(":") + 1 :].rstrip(","))
        return OutputHeader(
            options_hash=str(first["options_hash"]),
            model=str(first["model"]),
            source=str(first["source"]),
            masks=int(first["masks"]),
            seconds=float(first["seconds"]),
            run=str(first["run"]),
            width=int(image["width"]),
            height=int(image["height"]),
        )
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None


def _annotation(index: int, record: Mapping[str, Any]) -> dict[str, Any]:
    annotation: dict[str, Any] = {"id": index + 1}
    for key in _FIELDS:
        if key in record:
            annotation[key] = _plain(record[key])
    for key, value in record.items():
        if key not in annotation:
            annotation[key] = _plain(value)
    segmentation = annotation.get("segmentation")
    if not isinstance(segmentation, dict) or not isinstance(segmentation.get("counts"), str):
        raise TypeError(
            f"record {index}: segmentation must be a COCO RLE with string counts "
            "(output_mode='coco_rle')"
        )
    return annotation


def _plain(value: Any) -> Any:
    """Numbers as Python numbers (numpy scalars and arrays included), containers as lists."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, bytes):
        return value.decode("ascii")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
