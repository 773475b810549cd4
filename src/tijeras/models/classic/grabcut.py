"""Point, box and mask prompts segmented with OpenCV's GrabCut; three scored candidates each.

Everything here works on the resized working image (h x w x 3 uint8 RGB) and on prompts already
mapped into it. GrabCut labels every pixel sure/probable foreground/background; prompts set the
initial labels:

* a box: outside it sure background, inside probable foreground (``GC_INIT_WITH_RECT``'s
  initialisation, written as a mask so the seeds below can be added);
* clicks without a box: a square window around the positive clicks; outside it sure background,
  its inner part (``window_inner`` of its half-size) probable foreground, the ring between
  probable background;
* a mask input (earlier logits): probable foreground where positive, probable background
  elsewhere, inside the box or window;
* positive clicks are sure-foreground discs, negative clicks sure-background discs.

GrabCut runs on a crop (the box or window plus a ``context`` margin), which is faster and gives
colour models of the object's surroundings rather than of the whole image.

Candidates: with clicks and no box, one GrabCut run per window scale (part, object, larger
object); with a box, the result, its main piece, and the union of the image's Felzenszwalb regions
that lie mostly inside the box (a fallback where GrabCut's colour models fail); with only a
mask, the result, its main piece and that piece with its holes filled. When the last iteration
loses the object, the result after the first one is used. Clicked results keep only the connected
pieces that contain a positive click.

Score of a candidate (0..1): ``fit * edge * sqrt(agreement)``, and 0 for an empty mask or one no
larger than four times the click discs (GrabCut found nothing beyond the seeds).

* ``fit``: for window candidates ``1 - s / 0.1`` (at least 0), with ``s`` the share of the mask's
  outline lying on the window's edges where sure background was forced: a clipped object
  scores low; for box candidates the IoU of the mask's bounding box with the box; for mask-only
  prompts the IoU with the input mask;
* ``edge``: ``2 c - 1`` (at least 0) with ``c = b / (b + i)`` the boundary contrast of
  :func:`tijeras.classic.measures.boundary_contrast` (mean colour gradient on the outline, b,
  against inside, i): an outline on image edges scores high, one through flat colour low;
* ``agreement``: the mean IoU with the other non-empty candidates, 1 without any (a result that
  changes with the window size or the method is less reliable).

On the 30 pairs of ``coco_mval_subset`` this choice among the three window candidates reaches
0.44 mIoU for one click where the best candidate would give 0.58 (``bench/classic_miou.py``,
``docs/benchmarks.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from .config import ClassicConfig
from .measures import boundary_contrast, gradient

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 with exclusive ends, working pixels
CLIP_TOLERANCE = 0.1  # share of a clipped outline at which a window candidate scores 0
SEED_MULTIPLE = 4  # masks no larger than this many times the seed discs count as empty


@dataclass
class Prompt:
    """One prompt in working pixels.

    Attributes:
        points: N x 2 xy points (N may be 0).
        labels: N labels: 1 foreground, 0 background, -1 padding, 2/3 box corners.
        box: x0, y0, x1, y1, or None.
        mask: h x w logits of an earlier prediction (positive inside), or None.
    """

    points: np.ndarray
    labels: np.ndarray
    box: np.ndarray | None = None
    mask: np.ndarray | None = None

    def with_corner_box(self) -> Prompt:
        """The prompt with a box made of points labelled 2 (top-left) and 3 (bottom-right)."""
        if self.box is not None or not ((self.labels == 2).any() and (self.labels == 3).any()):
            return self
        corners = np.concatenate([self.points[self.labels == 2], self.points[self.labels == 3]])
        box = np.concatenate([corners.min(0), corners.max(0)])
        return Prompt(self.points, self.labels, box, self.mask)


def segment(
    image: np.ndarray,
    prompt: Prompt,
    config: ClassicConfig,
    regions: Callable[[], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate masks for one prompt.

    Args:
        image: h x w x 3 uint8 working image.
        prompt: the prompt in working pixels.
        config: the backend's parameters.
        regions: returns an h x w over-segmentation of the image (labels 0..n-1), used for
            the box's region candidate; computed on first use by the caller.

    Returns:
        C x h x w bool candidate masks (C = 3) and their C float scores in 0..1.
    """
    prompt = prompt.with_corner_box()
    h, w = image.shape[:2]
    radius = max(1, round(config.seed_radius * max(h, w)))
    pos = prompt.points[prompt.labels == 1]
    prior = None if prompt.mask is None else prompt.mask > 0
    seeds = SEED_MULTIPLE * np.pi * radius**2 * max(len(pos), 1)
    grad = gradient(image, 0.8)
    masks, scores = _candidates(image, prompt, prior, radius, config, regions, grad, seeds)
    negatives = prompt.points[prompt.labels == 0]
    if len(negatives):  # hole filling must not undo a background click
        discs = np.zeros((h, w), np.uint8)
        for x, y in negatives:
            # int(): numpy 1.x rounds its scalars to numpy floats, which OpenCV refuses
            cv2.circle(discs, (int(round(x)), int(round(y))), radius, 1, thickness=-1)  # noqa: RUF046
        masks &= ~discs.astype(bool)
    return masks, scores


DUPLICATE_IOU = 0.9
"""Candidates overlapping a better one by more than this IoU are not offered again."""


def distinct_candidates(
    masks: np.ndarray, scores: np.ndarray, min_pixels: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """The candidates that differ: near-duplicates (the lower-scoring of two), specks and
    candidates scored 0 (GrabCut found nothing beyond the seeds) are dropped; the rest keep
    their order (part to whole).

    Args:
        masks: C x h x w bool candidates; scores: their C scores.
        min_pixels: candidates with fewer pixels are dropped (unless none is larger).

    Returns:
        C' x h x w masks and C' scores (1 <= C' <= C).
    """
    order = np.argsort(-scores, kind="stable")
    kept: list[int] = []
    for i in order:
        if masks[i].sum() < min_pixels or scores[i] <= 0:
            continue
        if all(_iou(masks[i], masks[j]) <= DUPLICATE_IOU for j in kept):
            kept.append(int(i))
    if not kept:
        kept = [int(order[0])]
    kept.sort()
    return masks[kept], scores[kept]


def _candidates(
    image: np.ndarray,
    prompt: Prompt,
    prior: np.ndarray | None,
    radius: int,
    config: ClassicConfig,
    regions: Callable[[], np.ndarray] | None,
    grad: np.ndarray,
    seeds: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The three scored candidates of a box, click or mask-only prompt."""
    h, w = image.shape[:2]
    pos = prompt.points[prompt.labels == 1]
    if prompt.box is not None:
        roi = _box_rect(prompt.box, h, w)
        first, last = _run(image, roi, roi, prior, prompt, radius, config)
        masks = _piece_candidates(first, last, pos, seeds)
        if regions is not None:
            masks[-1] = _regions_in_box(regions(), roi)
        return _scored(masks, [_bbox_iou(m, roi) for m in masks], grad, seeds)
    if len(pos):
        masks, fits = _window_candidates(image, prompt, prior, radius, config)
        return _scored(masks, fits, grad, seeds)
    if prior is not None and prior.any():
        roi = _expand(_mask_rect(prior), config.window_scales[-1] * max(h, w), h, w)
        first, last = _run(image, roi, roi, prior, prompt, radius, config)
        masks = _piece_candidates(first, last, pos, seeds)
        return _scored(masks, [_iou(m, prior) for m in masks], grad, seeds)
    return np.zeros((3, h, w), bool), np.zeros(3, np.float32)


def _window_candidates(
    image: np.ndarray, prompt: Prompt, prior: np.ndarray | None, radius: int, config: ClassicConfig
) -> tuple[list[np.ndarray], list[float]]:
    """One candidate per window scale, with its fit (1 - clipped share / CLIP_TOLERANCE)."""
    h, w = image.shape[:2]
    pos = prompt.points[prompt.labels == 1]
    core = _points_rect(pos, h, w)
    if prior is not None and prior.any():
        core = _union(core, _mask_rect(prior))
    masks, fits = [], []
    for scale in config.window_scales:
        half = scale * max(h, w)
        roi = _expand(core, half, h, w)
        inner = _expand(core, half * config.window_inner, h, w)
        _, fg = _run(image, roi, inner, prior, prompt, radius, config)
        fg = _fill_small_holes(_keep_clicked(fg, pos))
        masks.append(fg)
        fits.append(1.0 - _clipped_share(fg, (roi,), h, w) / CLIP_TOLERANCE)
    return masks, fits


def _piece_candidates(
    first: np.ndarray, last: np.ndarray, pos: np.ndarray, seeds: float
) -> list[np.ndarray]:
    """The result (specks removed; after one iteration when the last one lost the object),
    its main piece, and the main piece with its holes filled."""
    cleaned = _drop_specks(last if last.sum() > seeds else first)
    main = _keep_clicked(cleaned, pos) if len(pos) else _largest(cleaned)
    return [cleaned, main, _fill_small_holes(main, limit=1.0)]


def _regions_in_box(labels: np.ndarray, box: Rect, share: float = 0.6) -> np.ndarray:
    """The regions of an over-segmentation lying at least ``share`` inside ``box``, cut to it."""
    x0, y0, x1, y1 = box
    n = int(labels.max()) + 1
    inside = np.bincount(labels[y0:y1, x0:x1].ravel(), minlength=n)
    total = np.bincount(labels.ravel(), minlength=n)
    mask = np.zeros(labels.shape, bool)
    mask[y0:y1, x0:x1] = (inside >= share * total)[labels[y0:y1, x0:x1]]
    return mask


def _scored(
    masks: list[np.ndarray], fits: list[float], grad: np.ndarray, seeds: float
) -> tuple[np.ndarray, np.ndarray]:
    """Stack the candidates and score them (see the module docstring)."""
    scores = np.zeros(len(masks), np.float32)
    found = [i for i, mask in enumerate(masks) if mask.sum() > seeds]
    for i in found:
        mask = masks[i]
        others = [_iou(mask, masks[j]) for j in found if j != i]
        agreement = float(np.mean(others)) if others else 1.0
        contrast = float(boundary_contrast(grad, mask.astype(np.int32), 2)[1])
        edge = max(0.0, 2.0 * contrast - 1.0)
        scores[i] = max(0.0, min(1.0, fits[i])) * edge * np.sqrt(agreement)
    return np.stack(masks), scores


# ----------------------------------------------------------------------------- GrabCut


def _run(
    image: np.ndarray,
    roi: Rect,
    inner: Rect,
    prior: np.ndarray | None,
    prompt: Prompt,
    radius: int,
    config: ClassicConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """GrabCut on ``roi`` plus context: the h x w bool foreground after the first and after
    the last iteration."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = roi
    margin = config.context * max(x1 - x0, y1 - y0) + 2 * radius
    cx0, cy0, cx1, cy1 = _expand(roi, margin, h, w)
    labels = _initial_labels(roi, inner, prior, prompt, radius, (cx0, cy0, cx1, cy1))
    crop = np.ascontiguousarray(image[cy0:cy1, cx0:cx1])
    results = []
    fg_seeds = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    runnable = 10 <= fg_seeds.sum() <= fg_seeds.size - 10
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut's k-means starts from OpenCV's global RNG: same prompt, same mask
    for mode, iters in ((cv2.GC_INIT_WITH_MASK, 1), (cv2.GC_EVAL, config.grabcut_iters - 1)):
        if runnable and iters > 0:
            try:
                cv2.grabCut(crop, labels, None, bgd, fgd, iters, mode)
            except cv2.error:  # too few distinct colours for the mixtures: keep the labels
                runnable = False
        out = np.zeros((h, w), bool)
        out[cy0:cy1, cx0:cx1] = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
        results.append(out)
    return results[0], results[1]


def _initial_labels(
    roi: Rect, inner: Rect, prior: np.ndarray | None, prompt: Prompt, radius: int, crop: Rect
) -> np.ndarray:
    """GrabCut's initial labels on the ``crop`` rectangle (see the module docstring)."""
    x0, y0, x1, y1 = roi
    cx0, cy0, cx1, cy1 = crop
    labels = np.full((cy1 - cy0, cx1 - cx0), cv2.GC_BGD, np.uint8)
    window = labels[y0 - cy0 : y1 - cy0, x0 - cx0 : x1 - cx0]
    window[...] = cv2.GC_PR_BGD
    if prior is not None:
        window[prior[y0:y1, x0:x1]] = cv2.GC_PR_FGD
    else:
        ix0, iy0, ix1, iy1 = inner
        labels[iy0 - cy0 : iy1 - cy0, ix0 - cx0 : ix1 - cx0] = cv2.GC_PR_FGD
    for (x, y), label in zip(prompt.points, prompt.labels):
        if label in (0, 1):
            value = cv2.GC_FGD if label == 1 else cv2.GC_BGD
            centre = (int(round(x)) - cx0, int(round(y)) - cy0)  # noqa: RUF046 (numpy 1.x scalars)
            cv2.circle(labels, centre, radius, int(value), thickness=-1)
    return labels


# ----------------------------------------------------------------------------- rectangles


def _box_rect(box: np.ndarray, h: int, w: int) -> Rect:
    """The box rounded outwards by a pixel (tight boxes touch the object), at least 2 x 2."""
    x0 = int(np.floor(box[0])) - 1
    y0 = int(np.floor(box[1])) - 1
    x1 = max(int(np.ceil(box[2])) + 1, x0 + 2)
    y1 = max(int(np.ceil(box[3])) + 1, y0 + 2)
    return _clip((x0, y0, x1, y1), h, w)


def _points_rect(points: np.ndarray, h: int, w: int) -> Rect:
    lo, hi = np.floor(points.min(0)), np.ceil(points.max(0))
    return _clip((int(lo[0]), int(lo[1]), int(hi[0]) + 1, int(hi[1]) + 1), h, w)


def _mask_rect(mask: np.ndarray) -> Rect:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _union(a: Rect, b: Rect) -> Rect:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _expand(rect: Rect, margin: float, h: int, w: int) -> Rect:
    m = round(margin)
    return _clip((rect[0] - m, rect[1] - m, rect[2] + m, rect[3] + m), h, w)


def _clip(rect: Rect, h: int, w: int) -> Rect:
    x0, y0 = min(max(rect[0], 0), w - 1), min(max(rect[1], 0), h - 1)
    return x0, y0, min(max(rect[2], x0 + 1), w), min(max(rect[3], y0 + 1), h)


# ----------------------------------------------------------------------------- masks


def _components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return n, labels, stats[:, cv2.CC_STAT_AREA]


def _keep_clicked(mask: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The connected pieces of ``mask`` that contain a positive click."""
    if not mask.any() or not len(points):
        return mask
    _, labels, _ = _components(mask)
    h, w = mask.shape
    xs = np.clip(np.round(points[:, 0]).astype(int), 0, w - 1)
    ys = np.clip(np.round(points[:, 1]).astype(int), 0, h - 1)
    hit = np.unique(labels[ys, xs])
    hit = hit[hit > 0]
    return np.isin(labels, hit) if len(hit) else mask


def _largest(mask: np.ndarray) -> np.ndarray:
    n, labels, areas = _components(mask)
    if n <= 1:
        return mask
    return labels == int(np.argmax(areas[1:])) + 1


def _drop_specks(mask: np.ndarray, share: float = 0.02) -> np.ndarray:
    """Remove pieces smaller than ``share`` of the largest piece."""
    n, labels, areas = _components(mask)
    if n <= 2:
        return mask
    keep = np.flatnonzero(areas[1:] >= share * areas[1:].max()) + 1
    return np.isin(labels, keep)


def _fill_small_holes(mask: np.ndarray, limit: float = 0.1) -> np.ndarray:
    """Fill holes (background not connected to the border) smaller than ``limit`` x area."""
    if not mask.any():
        return mask
    n, labels, areas = _components(~mask)
    if n <= 1:
        return mask
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]).ravel())
    small = areas <= limit * mask.sum()
    small[0] = False
    small[border] = False
    return mask | small[labels]


def _clipped_share(mask: np.ndarray, rects: tuple[Rect, ...], h: int, w: int) -> float:
    """Share of the mask's outline lying on the edges of ``rects`` that are not image edges:
    the straight borders GrabCut's initial labels drew, along which an object gets cut."""
    if not mask.any():
        return 1.0
    eroded = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8), borderValue=0)
    outline = mask & ~eroded.astype(bool)
    on_edge = np.zeros_like(mask)
    for x0, y0, x1, y1 in rects:
        if x0 > 0:
            on_edge[y0:y1, x0] = True
        if y0 > 0:
            on_edge[y0, x0:x1] = True
        if x1 < w:
            on_edge[y0:y1, x1 - 1] = True
        if y1 < h:
            on_edge[y1 - 1, x0:x1] = True
    return float((outline & on_edge).sum()) / float(outline.sum())


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum()) / float(union) if union else 0.0


def _bbox_iou(mask: np.ndarray, box: Rect) -> float:
    """IoU of the mask's bounding box with ``box``."""
    if not mask.any():
        return 0.0
    mx0, my0, mx1, my1 = _mask_rect(mask)
    iw = max(0, min(mx1, box[2]) - max(mx0, box[0]))
    ih = max(0, min(my1, box[3]) - max(my0, box[1]))
    inter = iw * ih
    area = (mx1 - mx0) * (my1 - my0) + (box[2] - box[0]) * (box[3] - box[1]) - inter
    return inter / area if area else 0.0


def to_logits(mask: np.ndarray, size: int, clip: float) -> np.ndarray:
    """A bool h x w mask as a size x size float32 signed distance map, positive inside.

    Inside pixels hold their distance to the nearest outside pixel, outside pixels minus
    their distance to the mask, clipped to +-``clip``; the padding beyond h x w is ``-clip``.
    Thresholding at 0, also after bilinear resizing, gives the mask back.
    """
    out = np.full((size, size), -clip, np.float32)
    m = mask.astype(np.uint8)
    inside = cv2.distanceTransform(m, cv2.DIST_L2, 3)
    outside = cv2.distanceTransform(1 - m, cv2.DIST_L2, 3)
    h, w = mask.shape
    out[:h, :w] = np.clip(inside - outside, -clip, clip)
    return out
