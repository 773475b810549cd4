"""Everything mode on large images: overlapping tiles at full resolution, merged across borders.

SAM looks at an image through a 1024-pixel window, so an 8000 x 6000 aerial photo given to
:class:`~tijeras.automatic.generator.SamAutomaticMaskGenerator` as a whole is shrunk ~8x and
small objects vanish. :func:`generate_tiled` instead cuts the image into overlapping tiles
(:func:`tile_boxes`), runs the generator's ``generate_records`` on every tile at full
resolution, and stitches the results:

1. **Placement.** Each tile mask (a compressed COCO RLE of the tile) becomes a compressed COCO
   RLE *of the full image*, built from the mask's run boundaries inside its bounding box
   (:func:`place_rle`): no full-image array is ever made. Everything after that works on
   compressed RLEs with pycocotools (``merge``, ``iou``, ``area``), whose cost grows with the
   number of runs, not of pixels.
2. **Fragments.** A mask whose box comes within ``edge_tol`` pixels of a tile edge that is not
   an image edge is a *fragment*: the object may go on in the next tile.
3. **Merging.** For every two overlapping tiles, masks of the two tiles (at least one of them a
   fragment) are compared inside the overlap zone only (both masks intersected with the zone
   rectangle). They belong to the same object when their IoU there is at least ``merge_iou``,
   or when a fragment lies inside the other mask there (intersection >= ``contain_ratio`` of
   the fragment's zone area) and that mask is its best match in that tile. Linked masks are
   grouped with union-find (so an object spread over 4, 6 or more tiles becomes one group)
   and each group's masks are unioned (``pycocotools.mask.merge``).
4. **Duplicates.** An object seen whole by two tiles (inside their overlap, touching no
   interior edge) comes out twice; masks of different tiles whose mask IoU exceeds
   ``dedupe_iou`` are reduced to the one with the higher predicted IoU (mask NMS, pairs
   pre-selected by box overlap). Masks of one and the same tile are left to the generator's
   own NMS, so a single tile gives exactly the plain generator's output.

Memory: the image, one tile crop and one decoded tile mask at a time, plus one compressed
full-image RLE per mask (a few bytes per run: about 2 runs per image column the mask spans).
Measured (``resource.getrusage`` ru_maxrss) with a fake generator returning one mask per
colour blob, on an 8000 x 6000 image with 1068 objects (88 tiles of 1024, overlap 256):
the process peaked at 823 MB, of which ~540 MB is the interpreter with torch imported and
137 MB the RGB image, so tiling, merging and the fake generator added ~140 MB; the 1068
full-image RLEs took 290 KB, where full-size bool masks would take 1068 x 48 MB = 51 GB.
The tiling code itself (placement, merging, dedupe) took ~3 s of the 20 s run.

Records come back in Meta's format (see :meth:`SamAutomaticMaskGenerator.generate`), with
``segmentation`` at full image size in the generator's ``output_mode`` (use ``"coco_rle"``
for large images: ``"binary_mask"`` means one H x W bool array per object in the result).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..io.rle import decode_coco_rle, masks_to_uncompressed_rle

__all__ = ["generate_tiled", "place_rle", "tile_boxes"]

Box = tuple[int, int, int, int]


def tile_boxes(height: int, width: int, tile_size: int = 1024, overlap: int = 256) -> list[Box]:
    """Overlapping tiles covering an image, row by row, as ``(x0, y0, x1, y1)`` (exclusive).

    Along each side the fewest tiles are used whose neighbours overlap by at least
    ``overlap`` pixels; they are spread evenly, so the first starts at 0 and the last ends on
    the image edge. A side no longer than ``tile_size`` is a single tile of that side's
    length (an image smaller than a tile is one tile, the whole image).

    Raises:
        ValueError: if ``tile_size < 1`` or ``overlap`` is not in ``[0, tile_size)``.
    """
    if tile_size < 1:
        raise ValueError(f"tile_size must be >= 1, got {tile_size}")
    if not 0 <= overlap < tile_size:
        raise ValueError(f"overlap must be in [0, tile_size={tile_size}), got {overlap}")
    xs = _starts(width, tile_size, overlap)
    ys = _starts(height, tile_size, overlap)
    tw, th = min(tile_size, width), min(tile_size, height)
    return [(x, y, x + tw, y + th) for y in ys for x in xs]


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    count = math.ceil((length - overlap) / (tile - overlap))
    step = (length - tile) / (count - 1)
    return [round(i * step) for i in range(count)]


def place_rle(mask: np.ndarray, x0: int, y0: int, height: int, width: int) -> dict[str, Any]:
    """A compressed COCO RLE (``bytes`` counts) of an h x w mask pasted at ``(x0, y0)`` into
    an otherwise empty ``height`` x ``width`` image, without making the full-size array.

    The run boundaries of every column of ``mask`` are shifted to their column-major index in
    the full image; runs of zeros between columns then follow from the differences. Work and
    memory are proportional to ``mask``'s size, not the image's.
    """
    from pycocotools import mask as mask_utils

    h, w = mask.shape
    if x0 < 0 or y0 < 0 or x0 + w > width or y0 + h > height:
        raise ValueError(f"a {w}x{h} mask at ({x0}, {y0}) does not fit in {width}x{height}")
    columns = np.zeros((w, h + 2), np.int8)  # one row per image column, zero-padded
    columns[:, 1:-1] = mask.T
    col, row = np.nonzero(np.diff(columns, axis=1))
    bounds = (col.astype(np.int64) + x0) * height + (row + y0)
    # A run ending at the bottom of one column and one starting at the top of the next meet
    # at the same index: drop both so the encoding stays canonical (no empty runs).
    if len(bounds) > 1:
        same = np.flatnonzero(bounds[1:] == bounds[:-1])
        if len(same):
            bounds = np.delete(bounds, np.concatenate([same, same + 1]))
    counts = np.diff(np.concatenate([[0], bounds, [height * width]]))
    plain = {"size": [height, width], "counts": [int(c) for c in counts]}
    return mask_utils.frPyObjects(plain, height, width)


def _rect_rle(box: Box, height: int, width: int) -> dict[str, Any]:
    """Compressed RLE of the rectangle ``[x0, x1) x [y0, y1)`` of a height x width image."""
    from pycocotools import mask as mask_utils

    x0, y0, x1, y1 = box
    cols = np.arange(x0, x1, dtype=np.int64) * height
    bounds = np.stack([cols + y0, cols + y1], axis=1).reshape(-1)
    if len(bounds) > 1:
        same = np.flatnonzero(bounds[1:] == bounds[:-1])
        if len(same):
            bounds = np.delete(bounds, np.concatenate([same, same + 1]))
    counts = np.diff(np.concatenate([[0], bounds, [height * width]]))
    return mask_utils.frPyObjects(
        {"size": [height, width], "counts": [int(c) for c in counts]}, height, width
    )


@dataclass
class _Part:
    """One tile mask placed in the image."""

    rle: dict[str, Any]  # compressed, bytes counts, full image size
    box: Box  # inclusive xyxy, image pixels (the generator's convention)
    iou: float
    stability: float
    point: tuple[float, float]
    tile: int
    fragment: bool


def generate_tiled(
    generator: Any,
    image: np.ndarray,
    tile_size: int = 1024,
    overlap: int = 256,
    merge_iou: float = 0.5,
    progress: Callable[[int, int], None] | None = None,
    *,
    dedupe_iou: float = 0.7,
    edge_tol: int = 3,
    contain_ratio: float = 0.9,
    output_mode: str | None = None,
) -> list[dict[str, Any]]:
    """Everything-mode masks of a large image, generated tile by tile at full resolution.

    Args:
        generator: a :class:`~tijeras.automatic.generator.SamAutomaticMaskGenerator` (or any
            object with ``generate_records(tile) -> MaskRecords`` and ``output_mode``).
        image: H x W x 3 uint8 RGB array.
        tile_size: side of the square tiles, in image pixels.
        overlap: minimum overlap of neighbouring tiles, in pixels (``0 <= overlap <
            tile_size``); masks are matched across a border inside this zone, so it should
            be wider than the typical cut-off part of an object.
        merge_iou: IoU, inside the overlap zone, at or above which two masks of neighbouring
            tiles are parts of one object.
        progress: optional ``callable(done, total)``. Counted in point batches over all
            tiles when the generator has a ``progress`` attribute (as
            ``SamAutomaticMaskGenerator`` does), otherwise in tiles.
        dedupe_iou: mask IoU above which two whole masks from different tiles are duplicates.
        edge_tol: a mask whose box is this close (pixels) to an interior tile edge is a
            fragment.
        contain_ratio: share of a fragment's zone area that must lie inside another mask
            for the two to merge when their IoU is below ``merge_iou``.
        output_mode: ``segmentation`` format; default the generator's ``output_mode``.

    Returns:
        One record per object, in Meta's format: ``segmentation`` (full image size),
        ``area``, ``bbox`` (XYWH, image pixels), ``predicted_iou`` (max over merged parts),
        ``point_coords`` (image pixels, of the best part), ``stability_score`` (min over
        parts), ``crop_box`` (XYWH: the tile; for a merged object the box around its tiles).
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be H x W x 3 uint8, got {image.shape} {image.dtype}")
    mode = output_mode or getattr(generator, "output_mode", "binary_mask")
    if mode not in ("binary_mask", "uncompressed_rle", "coco_rle"):
        raise ValueError(f"unknown output_mode {mode!r}")
    height, width = image.shape[:2]
    tiles = tile_boxes(height, width, tile_size, overlap)
    parts = _tile_parts(generator, image, tiles, edge_tol, progress)
    groups = _merge_groups(parts, tiles, height, width, merge_iou, contain_ratio)
    objects = [_combine(parts, group, tiles) for group in groups]
    objects = _dedupe(objects, dedupe_iou)
    return [_record(obj, mode) for obj in objects]


# --- per tile ----------------------------------------------------------------------------


def _tile_parts(
    generator: Any,
    image: np.ndarray,
    tiles: list[Box],
    edge_tol: int,
    progress: Callable[[int, int], None] | None,
) -> list[_Part]:
    height, width = image.shape[:2]
    hooked = progress is not None and hasattr(generator, "progress")
    saved = getattr(generator, "progress", None)
    parts: list[_Part] = []
    try:
        for index, (x0, y0, x1, y1) in enumerate(tiles):
            if hooked:
                generator.progress = _tile_progress(progress, index, len(tiles))
            crop = np.ascontiguousarray(image[y0:y1, x0:x1])
            records = generator.generate_records(crop)
            del crop
            parts.extend(_place_records(records, index, tiles[index], height, width, edge_tol))
            if progress is not None and not hooked:
                progress(index + 1, len(tiles))
    finally:
        if hooked:
            generator.progress = saved
    return parts


def _tile_progress(
    progress: Callable[[int, int], None], index: int, count: int
) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        progress(index * total + done, count * total)

    return report


def _place_records(
    records: Any, index: int, tile: Box, height: int, width: int, edge_tol: int
) -> list[_Part]:
    x0, y0, x1, y1 = tile
    tw, th = x1 - x0, y1 - y0
    whole_image = tile == (0, 0, width, height)
    interior = (x0 > 0, y0 > 0, x1 < width, y1 < height)  # left, top, right, bottom
    boxes = records.boxes.tolist()
    points = records.points.tolist()
    ious = records.iou.tolist()
    stabilities = records.stability.tolist()
    parts = []
    for i, rle in enumerate(records.rles):
        bx0, by0, bx1, by1 = (int(v) for v in boxes[i])
        if whole_image:
            counts = rle["counts"]
            placed = {
                "size": list(rle["size"]),
                "counts": counts.encode("ascii") if isinstance(counts, str) else counts,
            }
        else:
            local = decode_coco_rle(rle)
            placed = place_rle(
                local[by0 : by1 + 1, bx0 : bx1 + 1], x0 + bx0, y0 + by0, height, width
            )
            del local
        touches = (
            interior[0] and bx0 <= edge_tol,
            interior[1] and by0 <= edge_tol,
            interior[2] and bx1 >= tw - 1 - edge_tol,
            interior[3] and by1 >= th - 1 - edge_tol,
        )
        parts.append(
            _Part(
                rle=placed,
                box=(bx0 + x0, by0 + y0, bx1 + x0, by1 + y0),
                iou=float(ious[i]),
                stability=float(stabilities[i]),
                point=(float(points[i][0]) + x0, float(points[i][1]) + y0),
                tile=index,
                fragment=any(touches),
            )
        )
    return parts


# --- merging across borders --------------------------------------------------------------


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _intersect(a: Box, b: Box) -> Box | None:
    """Intersection of two exclusive xyxy boxes, or None when it is empty."""
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None


def _exclusive(box: Box) -> Box:
    return (box[0], box[1], box[2] + 1, box[3] + 1)


def _merge_groups(
    parts: list[_Part],
    tiles: list[Box],
    height: int,
    width: int,
    merge_iou: float,
    contain_ratio: float,
) -> list[list[int]]:
    """Indices of ``parts`` grouped into objects, each group sorted, groups by first index."""
    from pycocotools import mask as mask_utils

    by_tile: list[list[int]] = [[] for _ in tiles]
    for i, part in enumerate(parts):
        by_tile[part.tile].append(i)
    links = _UnionFind(len(parts))
    for ta in range(len(tiles)):
        for tb in range(ta + 1, len(tiles)):
            zone = _intersect(tiles[ta], tiles[tb])
            if zone is None:
                continue
            in_a = [i for i in by_tile[ta] if _intersect(_exclusive(parts[i].box), zone)]
            in_b = [i for i in by_tile[tb] if _intersect(_exclusive(parts[i].box), zone)]
            pairs = [
                (a, b)
                for a in in_a
                for b in in_b
                if (parts[a].fragment or parts[b].fragment)
                and _intersect(_exclusive(parts[a].box), _exclusive(parts[b].box))
            ]
            if not pairs:
                continue
            zone_rle = _rect_rle(zone, height, width)
            clipped: dict[int, tuple[dict[str, Any], int]] = {}

            def in_zone(i: int) -> tuple[dict[str, Any], int]:
                if i not in clipped:
                    rle = mask_utils.merge([parts[i].rle, zone_rle], intersect=True)
                    clipped[i] = (rle, int(mask_utils.area(rle)))
                return clipped[i]

            best: dict[int, tuple[float, int]] = {}  # part -> (best zone IoU, partner)
            linked: set[int] = set()
            contained: list[tuple[int, int]] = []  # (fragment inside, container)
            for a, b in pairs:
                (ra, area_a), (rb, area_b) = in_zone(a), in_zone(b)
                if area_a == 0 or area_b == 0:
                    continue
                inter = int(mask_utils.area(mask_utils.merge([ra, rb], intersect=True)))
                if inter == 0:
                    continue
                iou = inter / (area_a + area_b - inter)
                for me, other in ((a, b), (b, a)):
                    if iou > best.get(me, (-1.0, -1))[0]:
                        best[me] = (iou, other)
                if iou >= merge_iou:
                    links.union(a, b)
                    linked.update((a, b))
                    continue
                small, big = (a, b) if area_a <= area_b else (b, a)
                if parts[small].fragment and inter >= contain_ratio * min(area_a, area_b):
                    contained.append((small, big))
            for small, big in contained:
                if small not in linked and best[small][1] == big:
                    links.union(small, big)
    groups: dict[int, list[int]] = {}
    for i in range(len(parts)):
        groups.setdefault(links.find(i), []).append(i)
    return sorted(groups.values(), key=lambda group: group[0])


@dataclass
class _Object:
    rle: dict[str, Any]
    box: Box  # inclusive xyxy
    iou: float
    stability: float
    point: tuple[float, float]
    crop_box: Box  # exclusive xyxy
    tiles: frozenset[int]


def _combine(parts: list[_Part], group: list[int], tiles: list[Box]) -> _Object:
    from pycocotools import mask as mask_utils

    members = [parts[i] for i in group]
    if len(members) == 1:
        only = members[0]
        return _Object(
            only.rle,
            only.box,
            only.iou,
            only.stability,
            only.point,
            tiles[only.tile],
            frozenset([only.tile]),
        )
    best = max(members, key=lambda part: part.iou)
    boxes = np.array([part.box for part in members])
    used = sorted({part.tile for part in members})
    tile_array = np.array([tiles[t] for t in used])
    return _Object(
        rle=mask_utils.merge([part.rle for part in members], intersect=False),
        box=(*(int(v) for v in boxes[:, :2].min(0)), *(int(v) for v in boxes[:, 2:].max(0))),
        iou=best.iou,
        stability=min(part.stability for part in members),
        point=best.point,
        crop_box=(
            *(int(v) for v in tile_array[:, :2].min(0)),
            *(int(v) for v in tile_array[:, 2:].max(0)),
        ),
        tiles=frozenset(used),
    )


def _dedupe(objects: list[_Object], threshold: float) -> list[_Object]:
    """Mask NMS between objects of different tiles; keeps the input order of the survivors."""
    from pycocotools import mask as mask_utils

    if len(objects) < 2 or len({obj.tiles for obj in objects}) < 2:
        return objects
    order = sorted(range(len(objects)), key=lambda i: -objects[i].iou)
    boxes = np.array([obj.box for obj in objects], dtype=np.int64)
    kept: list[int] = []
    for i in order:
        if kept:
            k = np.array(kept)
            overlap = (
                np.maximum(boxes[k, 0], boxes[i, 0]) <= np.minimum(boxes[k, 2], boxes[i, 2])
            ) & (np.maximum(boxes[k, 1], boxes[i, 1]) <= np.minimum(boxes[k, 3], boxes[i, 3]))
            rivals = [
                j
                for j in k[overlap].tolist()
                if not (objects[j].tiles == objects[i].tiles and len(objects[i].tiles) == 1)
            ]
            if rivals:
                ious = mask_utils.iou([objects[j].rle for j in rivals], [objects[i].rle], [0])
                if float(np.max(ious)) > threshold:
                    continue
        kept.append(i)
    return [objects[i] for i in sorted(kept)]


# --- output ------------------------------------------------------------------------------


def _record(obj: _Object, mode: str) -> dict[str, Any]:
    from pycocotools import mask as mask_utils

    counts = obj.rle["counts"]
    rle = {
        "size": [int(v) for v in obj.rle["size"]],
        "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts,
    }
    segmentation: Any
    if mode == "coco_rle":
        segmentation = rle
    elif mode == "binary_mask":
        segmentation = decode_coco_rle(rle)
    else:
        import torch

        segmentation = masks_to_uncompressed_rle(torch.from_numpy(decode_coco_rle(rle))[None])[0]
    x0, y0, x1, y1 = obj.box
    cx0, cy0, cx1, cy1 = obj.crop_box
    return {
        "segmentation": segmentation,
        "area": int(mask_utils.area(obj.rle)),
        "bbox": [x0, y0, x1 - x0, y1 - y0],
        "predicted_iou": float(obj.iou),
        "point_coords": [[float(obj.point[0]), float(obj.point[1])]],
        "stability_score": float(obj.stability),
        "crop_box": [cx0, cy0, cx1 - cx0, cy1 - cy0],
    }
