"""Everything mode on large images: overlapping tiles at full resolution, merged across borders.

SAM looks at an image through a 1024-pixel window, so an 8000 x 6000 aerial photo given to
:class:`~tijeras.automatic.generator.SamAutomaticMaskGenerator` as a whole is shrunk ~8x and
small objects vanish. :func:`generate_tiled` instead cuts the image into overlapping tiles
(:func:`tile_boxes`), runs the generator's ``generate_records`` on every tile at full
resolution, and stitches the results:

1. **Placement.** Each tile mask (a compressed COCO RLE of the tile) is cut to its bounding box
   and kept as a compressed RLE of that box, its *frame* (:mod:`tijeras.automatic.frames`).
   Everything after that works on compressed RLEs with pycocotools (``merge``, ``iou``,
   ``area``), after putting the masks compared into one common frame
   (:func:`~tijeras.automatic.frames.reframe`, which shifts runs without decoding): no
   array of the image's size is ever made, and costs follow the objects' sizes.
2. **Fragments.** A mask whose box comes within ``edge_tol`` pixels of a tile edge that is not
   an image edge is a *fragment*: the object may go on in the next tile.
3. **Merging.** For every two overlapping tiles, masks of the two tiles (at least one of them a
   fragment) are compared inside the overlap zone only (both masks put in the zone's frame).
   They belong to the same object when their IoU there is at least ``merge_iou``, or when a
   fragment lies inside the other mask there (intersection >= ``contain_ratio`` of the
   fragment's zone area) and that mask is its best match in that tile. Linked masks are
   grouped with union-find (so an object spread over 4, 6 or more tiles becomes one group)
   and each group's masks are unioned (``pycocotools.mask.merge``) in the frame of their
   union box.
4. **Duplicates.** An object seen whole by two tiles (inside their overlap, touching no
   interior edge) comes out twice; masks of different tiles whose mask IoU exceeds
   ``dedupe_iou`` are reduced to the one with the higher predicted IoU (mask NMS, pairs
   pre-selected by box overlap through a grid of cells). Masks of one and the same tile are
   left to the generator's own NMS, so a single tile gives exactly the plain generator's
   output.

The image itself may be a :class:`TileSource` instead of an array: an object that reads one
tile at a time (a GeoTIFF read window by window, :mod:`tijeras.geo`), so a raster far larger
than memory is segmented with the memory of one tile plus the framed masks. A source may
answer ``None`` for a tile with nothing to segment (all nodata); the tile is skipped.

Memory: one tile crop and one decoded tile mask at a time, plus one compressed RLE per mask
(a few bytes per run: about 2 runs per column of its box). :func:`tiled_objects` returns the
objects with their framed masks; :func:`generate_tiled` returns Meta's records, whose
``segmentation`` is at full image size (use ``output_mode="coco_rle"`` for large images:
``"binary_mask"`` means one H x W bool array per object in the result).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..io.rle import decode_coco_rle, masks_to_uncompressed_rle
from .frames import Frame, decode_framed, place_rle, reframe, union_frame

__all__ = [
    "TileSource",
    "TiledObject",
    "generate_tiled",
    "place_rle",
    "tile_boxes",
    "tiled_objects",
]

Box = tuple[int, int, int, int]


@runtime_checkable
class TileSource(Protocol):
    """A large image read one tile at a time.

    ``read(box)`` returns the pixels of ``box = (x0, y0, x1, y1)`` (exclusive) as an
    (y1 - y0) x (x1 - x0) x 3 uint8 RGB array, or None when the tile holds nothing to segment
    (all nodata).
    """

    height: int
    width: int

    def read(self, box: Box) -> np.ndarray | None: ...


@dataclass(frozen=True)
class ArrayTiles:
    """An H x W x 3 uint8 array as a :class:`TileSource`."""

    image: np.ndarray

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    def read(self, box: Box) -> np.ndarray | None:
        x0, y0, x1, y1 = box
        return np.ascontiguousarray(self.image[y0:y1, x0:x1])


@dataclass(frozen=True)
class TiledObject:
    """One object found by tiled everything mode.

    Attributes:
        rle: compressed COCO RLE (``bytes`` counts) of the mask inside ``frame``.
        frame: ``(x0, y0, x1, y1)`` exclusive, image pixels: where ``rle`` lies (the mask's
            bounding box).
        box: inclusive xyxy box of the mask, image pixels (the generator's convention).
        iou: predicted IoU (the best of the merged parts).
        stability: stability score (the lowest of the merged parts).
        point: xy of the prompt point of the best part, image pixels.
        crop_box: exclusive xyxy of the tile, or of the tiles' union for a merged object.
        tiles: indices (in :func:`tile_boxes` order) of the tiles it was seen in.
    """

    rle: dict[str, Any]
    frame: Frame
    box: Box
    iou: float
    stability: float
    point: tuple[float, float]
    crop_box: Box
    tiles: frozenset[int]

    @property
    def area(self) -> int:
        from pycocotools import mask as mask_utils

        return int(mask_utils.area(self.rle))

    def mask(self) -> np.ndarray:
        """The mask inside ``frame``: (y1 - y0) x (x1 - x0) bool."""
        return decode_framed(self.rle)


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


@dataclass
class _Part:
    """One tile mask placed in the image."""

    rle: dict[str, Any]  # compressed, bytes counts, of ``frame``
    frame: Frame  # exclusive xyxy: the mask's box
    box: Box  # inclusive xyxy, image pixels (the generator's convention)
    iou: float
    stability: float
    point: tuple[float, float]
    tile: int
    fragment: bool


def generate_tiled(
    generator: Any,
    image: np.ndarray | TileSource,
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
        image: H x W x 3 uint8 RGB array, or a :class:`TileSource` read tile by tile.
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
    mode = output_mode or getattr(generator, "output_mode", "binary_mask")
    if mode not in ("binary_mask", "uncompressed_rle", "coco_rle"):
        raise ValueError(f"unknown output_mode {mode!r}")
    source = _as_source(image)
    objects = tiled_objects(
        generator,
        source,
        tile_size,
        overlap,
        merge_iou,
        progress,
        dedupe_iou=dedupe_iou,
        edge_tol=edge_tol,
        contain_ratio=contain_ratio,
    )
    return [_record(obj, mode, source.height, source.width) for obj in objects]


def tiled_objects(
    generator: Any,
    source: np.ndarray | TileSource,
    tile_size: int = 1024,
    overlap: int = 256,
    merge_iou: float = 0.5,
    progress: Callable[[int, int], None] | None = None,
    *,
    dedupe_iou: float = 0.7,
    edge_tol: int = 3,
    contain_ratio: float = 0.9,
) -> list[TiledObject]:
    """The objects of :func:`generate_tiled`, each with its mask framed by its own box.

    Arguments as :func:`generate_tiled`. Objects come in tile order (the order of their first
    part), so the result does not depend on timing.
    """
    tiles_source = _as_source(source)
    height, width = tiles_source.height, tiles_source.width
    tiles = tile_boxes(height, width, tile_size, overlap)
    parts = _tile_parts(generator, tiles_source, tiles, edge_tol, progress)
    groups = _merge_groups(parts, tiles, merge_iou, contain_ratio)
    objects = [_combine(parts, group, tiles) for group in groups]
    return _dedupe(objects, dedupe_iou, max(64, tile_size - overlap))


def _as_source(image: np.ndarray | TileSource) -> TileSource:
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be H x W x 3 uint8, got {image.shape} {image.dtype}")
        return ArrayTiles(image)
    if isinstance(image, TileSource):
        return image
    raise TypeError(
        f"image must be an H x W x 3 uint8 array or a TileSource (height, width, read), "
        f"got {type(image).__name__}"
    )


# --- per tile ----------------------------------------------------------------------------


def _tile_parts(
    generator: Any,
    source: TileSource,
    tiles: list[Box],
    edge_tol: int,
    progress: Callable[[int, int], None] | None,
) -> list[_Part]:
    height, width = source.height, source.width
    hooked = progress is not None and hasattr(generator, "progress")
    saved = getattr(generator, "progress", None)
    parts: list[_Part] = []
    try:
        for index, tile in enumerate(tiles):
            if hooked:
                generator.progress = _tile_progress(progress, index, len(tiles))
            crop = source.read(tile)
            if crop is not None:
                _check_crop(crop, tile)
                records = generator.generate_records(crop)
                del crop
                parts.extend(_place_records(records, index, tile, height, width, edge_tol))
            if progress is not None and not hooked:
                progress(index + 1, len(tiles))
    finally:
        if hooked:
            generator.progress = saved
    return parts


def _check_crop(crop: np.ndarray, tile: Box) -> None:
    x0, y0, x1, y1 = tile
    if crop.shape != (y1 - y0, x1 - x0, 3) or crop.dtype != np.uint8:
        raise ValueError(
            f"the tile source gave a {crop.shape} {crop.dtype} array for tile {tile}; "
            f"expected ({y1 - y0}, {x1 - x0}, 3) uint8"
        )


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
    interior = (x0 > 0, y0 > 0, x1 < width, y1 < height)  # left, top, right, bottom
    boxes = records.boxes.tolist()
    points = records.points.tolist()
    ious = records.iou.tolist()
    stabilities = records.stability.tolist()
    parts = []
    for i, rle in enumerate(records.rles):
        bx0, by0, bx1, by1 = (int(v) for v in boxes[i])
        frame = (x0 + bx0, y0 + by0, x0 + bx1 + 1, y0 + by1 + 1)
        framed = reframe(rle, (0, 0, tw, th), (bx0, by0, bx1 + 1, by1 + 1))
        touches = (
            interior[0] and bx0 <= edge_tol,
            interior[1] and by0 <= edge_tol,
            interior[2] and bx1 >= tw - 1 - edge_tol,
            interior[3] and by1 >= th - 1 - edge_tol,
        )
        parts.append(
            _Part(
                rle=framed,
                frame=frame,
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


def _overlapping_tile_pairs(tiles: list[Box]) -> list[tuple[int, int]]:
    """``(a, b)`` with ``a < b`` for every two tiles that overlap, in order."""
    array = np.asarray(tiles, dtype=np.int64).reshape(-1, 4)
    pairs = []
    for a in range(len(array) - 1):
        rest = array[a + 1 :]
        hit = (np.maximum(rest[:, 0], array[a, 0]) < np.minimum(rest[:, 2], array[a, 2])) & (
            np.maximum(rest[:, 1], array[a, 1]) < np.minimum(rest[:, 3], array[a, 3])
        )
        pairs.extend((a, a + 1 + int(b)) for b in np.flatnonzero(hit))
    return pairs


def _merge_groups(
    parts: list[_Part], tiles: list[Box], merge_iou: float, contain_ratio: float
) -> list[list[int]]:
    """Indices of ``parts`` grouped into objects, each group sorted, groups by first index."""
    by_tile: list[list[int]] = [[] for _ in tiles]
    for i, part in enumerate(parts):
        by_tile[part.tile].append(i)
    links = _UnionFind(len(parts))
    for ta, tb in _overlapping_tile_pairs(tiles):
        zone = _intersect(tiles[ta], tiles[tb])
        assert zone is not None
        in_a = [i for i in by_tile[ta] if _intersect(parts[i].frame, zone)]
        in_b = [i for i in by_tile[tb] if _intersect(parts[i].frame, zone)]
        pairs = [
            (a, b)
            for a in in_a
            for b in in_b
            if (parts[a].fragment or parts[b].fragment)
            and _intersect(parts[a].frame, parts[b].frame)
        ]
        if pairs:
            _link_in_zone(parts, pairs, zone, links, merge_iou, contain_ratio)
    groups: dict[int, list[int]] = {}
    for i in range(len(parts)):
        groups.setdefault(links.find(i), []).append(i)
    return sorted(groups.values(), key=lambda group: group[0])


def _link_in_zone(
    parts: list[_Part],
    pairs: list[tuple[int, int]],
    zone: Box,
    links: _UnionFind,
    merge_iou: float,
    contain_ratio: float,
) -> None:
    """Link the pairs of masks of two tiles that are one object inside their overlap zone."""
    from pycocotools import mask as mask_utils

    clipped: dict[int, tuple[dict[str, Any], int]] = {}

    def in_zone(i: int) -> tuple[dict[str, Any], int]:
        if i not in clipped:
            rle = reframe(parts[i].rle, parts[i].frame, zone)
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


def _combine(parts: list[_Part], group: list[int], tiles: list[Box]) -> TiledObject:
    from pycocotools import mask as mask_utils

    members = [parts[i] for i in group]
    if len(members) == 1:
        only = members[0]
        return TiledObject(
            only.rle,
            only.frame,
            only.box,
            only.iou,
            only.stability,
            only.point,
            tiles[only.tile],
            frozenset([only.tile]),
        )
    best = max(members, key=lambda part: part.iou)
    frame = union_frame([part.frame for part in members])
    merged = mask_utils.merge([reframe(p.rle, p.frame, frame) for p in members], intersect=False)
    used = sorted({part.tile for part in members})
    return TiledObject(
        rle=merged,
        frame=frame,
        box=(frame[0], frame[1], frame[2] - 1, frame[3] - 1),
        iou=best.iou,
        stability=min(part.stability for part in members),
        point=best.point,
        crop_box=union_frame([tiles[t] for t in used]),
        tiles=frozenset(used),
    )


def _dedupe(objects: list[TiledObject], threshold: float, cell: int) -> list[TiledObject]:
    """Mask NMS between objects of different tiles; keeps the input order of the survivors.

    Kept objects are filed in a grid of ``cell``-pixel cells by their boxes, so each object is
    compared only with the kept ones near it.
    """
    from pycocotools import mask as mask_utils

    if len(objects) < 2 or len({obj.tiles for obj in objects}) < 2:
        return objects
    order = sorted(range(len(objects)), key=lambda i: -objects[i].iou)
    grid: dict[tuple[int, int], list[int]] = {}
    kept: list[int] = []
    for i in order:
        obj = objects[i]
        cells = [
            (cx, cy)
            for cx in range(obj.frame[0] // cell, (obj.frame[2] - 1) // cell + 1)
            for cy in range(obj.frame[1] // cell, (obj.frame[3] - 1) // cell + 1)
        ]
        near = sorted({j for c in cells for j in grid.get(c, ())})
        duplicate = False
        for j in near:
            other = objects[j]
            if other.tiles == obj.tiles and len(obj.tiles) == 1:
                continue
            if _intersect(other.frame, obj.frame) is None:
                continue
            frame = union_frame([obj.frame, other.frame])
            pair = [reframe(obj.rle, obj.frame, frame), reframe(other.rle, other.frame, frame)]
            if float(mask_utils.iou([pair[1]], [pair[0]], [0])[0][0]) > threshold:
                duplicate = True
                break
        if not duplicate:
            kept.append(i)
            for c in cells:
                grid.setdefault(c, []).append(i)
    return [objects[i] for i in sorted(kept)]


# --- output ------------------------------------------------------------------------------


def _record(obj: TiledObject, mode: str, height: int, width: int) -> dict[str, Any]:
    full = reframe(obj.rle, obj.frame, (0, 0, width, height))
    counts = full["counts"]
    rle = {
        "size": [int(v) for v in full["size"]],
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
        "area": obj.area,
        "bbox": [x0, y0, x1 - x0, y1 - y0],
        "predicted_iou": float(obj.iou),
        "point_coords": [[float(obj.point[0]), float(obj.point[1])]],
        "stability_score": float(obj.stability),
        "crop_box": [cx0, cy0, cx1 - cx0, cy1 - cy0],
    }
