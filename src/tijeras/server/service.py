"""What the endpoints do, apart from HTTP: encode, decode prompts, hover, everything.

Every function takes an :class:`~tijeras.server.store.ImageEntry` and the loaded
:class:`~tijeras.server.backend.Backend`; none keeps state of its own, so requests for
different images (or the same image) can run in parallel threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..automatic.options import EverythingOptions
from ..engine import transforms
from ..engine.predictor import Predictor
from ..engine.prompts import validate_prompts
from ..errors import PromptError
from ..io.export import mask_to_box
from ..io.rle import coco_rle
from .backend import Backend
from .jobs import encoder_progress
from .store import ImageEntry, MaskEntry

HOVER_SIDE = 1024  # hover masks are computed at most this large (the page scales them)
# Prompt decoding for all images and clients runs on one thread. On a small CPU, decodes running
# side by side only fight over the cores (each already uses all of them), so taking turns answers
# every client sooner; and a single calling thread keeps one warm team of math-library threads
# instead of one team per request thread, all spinning for the cores. The encoder queue has its
# own thread.
DECODER_THREAD = "tijeras-decode"
DECODER = ThreadPoolExecutor(max_workers=1, thread_name_prefix=DECODER_THREAD)


def on_decoder(fn: Callable[[], Any]) -> Any:
    """Run ``fn()`` on the decoding thread and return its result (its exceptions propagate)."""
    if threading.current_thread().name.startswith(DECODER_THREAD):
        return fn()
    return DECODER.submit(fn).result()


# ------------------------------------------------------------------------------- encoding
def encode(entry: ImageEntry, backend: Backend) -> None:
    """Compute the image's embedding (run by the heavy queue); records failure on the entry."""
    entry.status = "encoding"
    started = time.perf_counter()
    try:
        predictor = Predictor(backend.model, cache_size=0, model_name=backend.name)

        def report(fraction: float) -> None:
            entry.progress = round(0.05 + 0.95 * fraction, 3)

        with encoder_progress(backend.model, report):
            predictor.set_image(entry.pixels)
        entry.predictor = predictor
        entry.progress = 1.0
        entry.status = "ready"
        entry.encode_seconds = time.perf_counter() - started
    except Exception as err:  # noqa: BLE001 (reported to the page; the server keeps running)
        entry.status = "failed"
        entry.error = f"encoding failed: {err}"
    finally:
        entry.encoded.set()


def _predictor(entry: ImageEntry) -> Predictor:
    """The image's predictor (one per image, kept while the image is open)."""
    if entry.predictor is None:
        raise PromptError(f"image {entry.id} is not encoded yet (status: {entry.status})")
    return entry.predictor


# ------------------------------------------------------------------------------- prompts
def segment(
    entry: ImageEntry,
    backend: Backend,
    points: list[list[float]] | None,
    labels: list[int] | None,
    box: list[float] | None,
    mask_input_id: str | None,
    multimask: bool,
) -> list[tuple[str, MaskEntry]]:
    """Decode one prompt into full-size candidate masks, stored on the entry (best first)."""
    predictor = _predictor(entry)
    mask_input = None
    if mask_input_id is not None:
        previous = entry.mask(mask_input_id)
        if previous is None:
            raise PromptError(f"unknown mask id {mask_input_id!r} for mask_input")
        if previous.low_res is None:
            raise PromptError(f"mask {mask_input_id!r} has no low-res logits to feed back")
        mask_input = previous.low_res
    result = on_decoder(
        lambda: predictor.predict(
            point_coords=None if points is None else np.asarray(points, dtype=np.float64),
            point_labels=None if labels is None else np.asarray(labels),
            box=None if box is None else np.asarray(box, dtype=np.float64),
            mask_input=mask_input,
            multimask_output=multimask,
        )
    )
    order = np.argsort(-result.scores, kind="stable")
    rles = coco_rle(result.masks[order])
    stored = []
    for rank, index in enumerate(order):
        mask = result.masks[index]
        entry_mask = mask_entry(mask, rles[rank], float(result.scores[index]), "prompt")
        entry_mask.low_res = result.low_res_logits[index][None].astype(np.float32)
        stored.append((entry.add_mask(entry_mask, _limit(entry)), entry_mask))
    return stored


def _limit(entry: ImageEntry) -> int:
    return entry.mask_limit


def mask_entry(mask: np.ndarray, rle: dict[str, Any], score: float, source: str) -> MaskEntry:
    """A stored mask made from an H x W bool array and its compressed RLE."""
    area = int(np.count_nonzero(mask))
    box = mask_to_box(mask)
    bbox = [0.0, 0.0, 0.0, 0.0] if box is None else _xywh(box)
    return MaskEntry(rle=rle, score=score, low_res=None, area=area, bbox=bbox, source=source)


def _xywh(box: Any) -> list[float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    return [x0, y0, x1 - x0, y1 - y0]


def hover_size(entry: ImageEntry) -> tuple[int, int]:
    """(h, w) of hover masks: the image scaled so its longest side is at most 1024."""
    h, w = entry.height, entry.width
    if max(h, w) <= HOVER_SIDE:
        return h, w
    return transforms.input_size(h, w, HOVER_SIDE)


def hover(entry: ImageEntry, x: float, y: float) -> dict[str, Any]:
    """The best mask for one foreground point, at hover size, as a compressed RLE."""
    predictor = _predictor(entry)
    emb = predictor.embedding
    prompts = validate_prompts([[x, y]], [1], None, None, emb.original_size, predictor.spec)
    batch = predictor.to_input_frame(prompts)
    masks, scores = on_decoder(lambda: predictor.best_mask(batch, hover_size(entry)))
    return {"rle": coco_rle(masks.cpu().numpy())[0], "score": float(scores[0])}


# ----------------------------------------------------------------------------- everything
def everything(entry: ImageEntry, backend: Backend, options: EverythingOptions) -> None:
    """Run everything mode (on the heavy queue) and store its masks on the entry."""
    state = entry.everything
    state.update(status="running", progress=0.0)
    try:
        generator = backend.model.mask_generator(options, output_mode="coco_rle")
        generator.progress = lambda done, total: state.update(progress=done / max(total, 1))
        predictor = _predictor(entry)
        records = generator.generate(entry.pixels, embedding=predictor.embedding)
        masks = []
        for record in records:
            item = MaskEntry(
                rle=record["segmentation"],
                score=float(record["predicted_iou"]),
                low_res=None,
                area=int(record["area"]),
                bbox=_rle_bbox(record["segmentation"]),
                source="everything",
            )
            masks.append((entry.add_mask(item, _limit(entry) + len(records)), item))
        state.update(status="done", progress=1.0, masks=[describe(i, m) for i, m in masks])
    except Exception as err:  # noqa: BLE001 (reported to the page; the server keeps running)
        state.update(status="failed", error=f"everything failed: {err}")


def _rle_bbox(rle: dict[str, Any]) -> list[float]:
    """COCO's XYWH box (full pixel extent) of a compressed RLE.

    Everything-mode records keep Meta's boxes, one pixel narrower than the mask's extent;
    the server reports every mask the same way, by its extent, as COCO files do.
    """
    from pycocotools import mask as mask_utils

    return [float(v) for v in mask_utils.toBbox({**rle, "counts": rle["counts"].encode()})]


# ------------------------------------------------------------------------------ answers
def describe(mask_id: str, mask: MaskEntry) -> dict[str, Any]:
    """A mask as the API returns it."""
    return {
        "id": mask_id,
        "score": round(mask.score, 5),
        "area": mask.area,
        "bbox": mask.bbox,
        "source": mask.source,
        "rle": mask.rle,
    }
