"""Tiled everything mode: tile layout, RLE placement, merging across tile borders, dedupe.

The merge logic is tested exactly with a fake generator that returns one mask per connected
colour blob of a tile, on a colour-coded synthetic image whose objects are known.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from tijeras.automatic.records import MaskRecords
from tijeras.automatic.tiling import generate_tiled, place_rle, tile_boxes
from tijeras.io.rle import coco_rle, decode_coco_rle


class BlobGenerator:
    """Stands in for SamAutomaticMaskGenerator: one record per connected blob of one colour.

    Black (0, 0, 0) is background. ``predicted_iou`` depends on the blob's colour and size so
    parts of one object get different scores; the point is the blob's first pixel.
    """

    def __init__(self, output_mode: str = "coco_rle") -> None:
        self.output_mode = output_mode
        self.calls: list[tuple[int, int]] = []

    def generate_records(self, image: np.ndarray) -> MaskRecords:
        self.calls.append(image.shape[:2])
        h, w = image.shape[:2]
        keys = image.astype(np.int32) @ np.array([1 << 16, 1 << 8, 1])
        masks, scores, points = [], [], []
        for key in np.unique(keys):
            if key == 0:
                continue
            count, labels = cv2.connectedComponents((keys == key).astype(np.uint8), connectivity=8)
            for label in range(1, count):
                mask = labels == label
                ys, xs = np.nonzero(mask)
                masks.append(mask)
                scores.append(0.80 + (int(key) % 97) / 1000 + min(len(ys), 10**6) / 1e8)
                points.append([float(xs[0]), float(ys[0])])
        if not masks:
            return MaskRecords.empty()
        stack = torch.from_numpy(np.stack(masks))
        rows, cols = stack.any(2), stack.any(1)
        boxes = torch.tensor(
            [
                [
                    int(np.flatnonzero(c)[0]),
                    int(np.flatnonzero(r)[0]),
                    int(np.flatnonzero(c)[-1]),
                    int(np.flatnonzero(r)[-1]),
                ]
                for r, c in zip(rows.numpy(), cols.numpy())
            ],
            dtype=torch.int64,
        )
        n = len(masks)
        return MaskRecords(
            rles=coco_rle(stack),
            iou=torch.tensor(scores, dtype=torch.float32),
            stability=torch.linspace(0.99, 0.95, n),
            points=torch.tensor(points, dtype=torch.float32),
            boxes=boxes,
            crop_boxes=torch.tensor([[0, 0, w, h]] * n, dtype=torch.int64),
        )

    def generate(self, image: np.ndarray) -> list[dict]:
        from tijeras.automatic.generator import SamAutomaticMaskGenerator

        return SamAutomaticMaskGenerator.to_output(self, self.generate_records(image))


def _colour(k: int) -> tuple[int, int, int]:
    value = 40 + 37 * k
    return (value % 256, (value * 7 + 30) % 256, 200 - 5 * k)


def _scene(height: int, width: int, shapes: dict[str, tuple]) -> tuple[np.ndarray, dict]:
    """Draw named rectangles ("rect", x0, y0, x1, y1 exclusive) and discs ("disc", cx, cy, r)."""
    image = np.zeros((height, width, 3), np.uint8)
    truth = {}
    yy, xx = np.mgrid[0:height, 0:width]
    for k, (name, shape) in enumerate(shapes.items()):
        if shape[0] == "rect":
            _, x0, y0, x1, y1 = shape
            mask = (xx >= x0) & (xx < x1) & (yy >= y0) & (yy < y1)
        else:
            _, cx, cy, r = shape
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        assert not (image[mask] != 0).any(), f"{name} overlaps another shape"
        image[mask] = _colour(k)
        truth[name] = mask
    return image, truth


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


# 2500 x 1800 with 1024 tiles, overlap 256: columns start at 0, 738, 1476; rows at 0, 388, 776.
HEIGHT, WIDTH = 1800, 2500
SHAPES = {
    "inside_one_tile": ("rect", 50, 50, 300, 300),
    "image_corner": ("rect", 0, 1600, 200, 1800),
    "straddles_vertical_border": ("rect", 980, 80, 1150, 280),
    "whole_in_two_tiles": ("rect", 770, 40, 900, 200),
    "whole_in_four_tiles": ("disc", 880, 580, 90),
    "corner_disc": ("disc", 900, 1250, 380),
    "small_disc_at_corner": ("disc", 1500, 300, 100),
    "larger_than_a_tile": ("rect", 1300, 700, 2450, 1750),
    "bar_across_row_border": ("rect", 100, 1000, 450, 1030),
}


@pytest.fixture(scope="module")
def scene() -> tuple[np.ndarray, dict]:
    return _scene(HEIGHT, WIDTH, SHAPES)


@pytest.fixture(scope="module")
def tiled(scene: tuple[np.ndarray, dict]) -> list[dict]:
    image, _ = scene
    return generate_tiled(BlobGenerator(), image, tile_size=1024, overlap=256)


# --- layout ------------------------------------------------------------------------------


def test_tile_boxes_cover_the_image_with_at_least_the_overlap() -> None:
    for height, width, size, overlap in [
        (1800, 2500, 1024, 256),
        (6000, 8000, 1024, 256),
        (1000, 1025, 512, 0),
        (300, 700, 256, 100),
    ]:
        boxes = tile_boxes(height, width, size, overlap)
        covered = np.zeros((height, width), bool)
        for x0, y0, x1, y1 in boxes:
            assert (x1 - x0, y1 - y0) == (min(size, width), min(size, height))
            assert 0 <= x0 and 0 <= y0 and x1 <= width and y1 <= height
            covered[y0:y1, x0:x1] = True
        assert covered.all()
        xs = sorted({b[0] for b in boxes})
        ys = sorted({b[1] for b in boxes})
        assert xs[0] == 0 and ys[0] == 0
        assert max(b[2] for b in boxes) == width and max(b[3] for b in boxes) == height
        for starts, side in ((xs, min(size, width)), (ys, min(size, height))):
            for a, b in itertools.pairwise(starts):
                assert a + side - b >= overlap  # neighbours overlap enough


def test_tile_layout_of_the_test_scene() -> None:
    boxes = tile_boxes(HEIGHT, WIDTH, 1024, 256)
    assert sorted({b[0] for b in boxes}) == [0, 738, 1476]
    assert sorted({b[1] for b in boxes}) == [0, 388, 776]
    assert tile_boxes(500, 600, 1024, 256) == [(0, 0, 600, 500)]


def test_tile_boxes_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError):
        tile_boxes(100, 100, 64, 64)
    with pytest.raises(ValueError):
        tile_boxes(100, 100, 0, 0)


def test_place_rle_matches_encoding_the_full_mask() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        height, width = rng.integers(5, 40, 2)
        h, w = rng.integers(1, height + 1), rng.integers(1, width + 1)
        x0, y0 = rng.integers(0, width - w + 1), rng.integers(0, height - h + 1)
        local = rng.random((h, w)) < rng.random()
        if rng.random() < 0.3:
            local[:] = True  # full columns: runs that meet between columns
        full = np.zeros((height, width), bool)
        full[y0 : y0 + h, x0 : x0 + w] = local
        placed = place_rle(local, int(x0), int(y0), int(height), int(width))
        expected = mask_utils.encode(np.asfortranarray(full.astype(np.uint8)))
        assert placed["counts"] == expected["counts"]
        assert list(placed["size"]) == [height, width]


# --- merging -----------------------------------------------------------------------------


def test_one_mask_per_object_matching_the_truth(scene, tiled) -> None:
    _, truth = scene
    assert len(tiled) == len(truth)
    masks = [decode_coco_rle(r["segmentation"]) for r in tiled]
    matched = set()
    for name, true_mask in truth.items():
        ious = [_iou(m, true_mask) for m in masks]
        best = int(np.argmax(ious))
        assert ious[best] >= 0.99, name
        assert best not in matched, f"{name} shares a mask with another object"
        matched.add(best)
    for mask in masks:  # no duplicates: no two outputs cover the same object
        assert sum(_iou(mask, t) > 0.5 for t in truth.values()) == 1


def test_records_are_well_formed_and_consistent(scene, tiled) -> None:
    for record in tiled:
        rle = record["segmentation"]
        assert rle["size"] == [HEIGHT, WIDTH] and isinstance(rle["counts"], str)
        mask = decode_coco_rle(rle)
        assert record["area"] == int(mask.sum())
        ys, xs = np.nonzero(mask)
        assert record["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()]
        ((px, py),) = record["point_coords"]
        assert mask[int(py), int(px)]
        cx, cy, cw, ch = record["crop_box"]
        assert cx <= xs.min() and cy <= ys.min() and xs.max() < cx + cw and ys.max() < cy + ch
        assert 0 < record["predicted_iou"] < 1 and 0.9 <= record["stability_score"] <= 1


def test_objects_inside_one_tile_are_unchanged(scene, tiled) -> None:
    image, truth = scene
    plain = BlobGenerator().generate(np.ascontiguousarray(image[0:1024, 0:1024]))
    for name in ("inside_one_tile",):
        [out] = [r for r in tiled if _iou(decode_coco_rle(r["segmentation"]), truth[name]) > 0.5]
        [ref] = [r for r in plain if r["bbox"] == out["bbox"]]
        assert out["crop_box"] == [0, 0, 1024, 1024]
        assert out["predicted_iou"] == ref["predicted_iou"]
        assert out["point_coords"] == ref["point_coords"]
        assert out["area"] == ref["area"]
        assert np.array_equal(decode_coco_rle(out["segmentation"]), truth[name])
    [corner] = [
        r for r in tiled if _iou(decode_coco_rle(r["segmentation"]), truth["image_corner"]) > 0.5
    ]
    assert corner["crop_box"] == [0, 776, 1024, 1024]  # touches only image edges: one tile


def test_merged_objects_report_their_parts(scene, tiled) -> None:
    _, truth = scene
    [big] = [
        r
        for r in tiled
        if _iou(decode_coco_rle(r["segmentation"]), truth["larger_than_a_tile"]) > 0.5
    ]
    assert big["area"] == int(truth["larger_than_a_tile"].sum())
    # spread over the two right tile columns and all rows: the union box of those tiles
    assert big["crop_box"] == [738, 0, 2500 - 738, 1800]
    [corner] = [
        r for r in tiled if _iou(decode_coco_rle(r["segmentation"]), truth["corner_disc"]) > 0.5
    ]
    assert corner["crop_box"] == [0, 0, 1762, 1800]


def test_single_tile_equals_the_plain_generator() -> None:
    image, _ = _scene(
        400,
        600,
        {
            "a": ("rect", 10, 10, 100, 80),
            "b": ("disc", 300, 200, 90),
            "c": ("rect", 500, 0, 600, 400),
        },
    )
    for mode in ("coco_rle", "binary_mask", "uncompressed_rle"):
        generator = BlobGenerator(mode)
        tiled = generate_tiled(generator, image, tile_size=1024, overlap=256)
        plain = generator.generate(image)
        assert len(tiled) == len(plain) == 3
        for got, want in zip(tiled, plain):
            assert got.keys() == want.keys()
            for key in want:
                if mode == "binary_mask" and key == "segmentation":
                    assert got[key].shape == want[key].shape
                    assert np.array_equal(got[key], want[key])
                else:
                    assert got[key] == want[key], key


def test_binary_output_at_full_size_and_progress_in_tiles() -> None:
    image, truth = _scene(
        300, 500, {"bar": ("rect", 20, 100, 480, 140), "dot": ("disc", 60, 250, 20)}
    )
    calls = []
    out = generate_tiled(
        BlobGenerator("binary_mask"),
        image,
        tile_size=200,
        overlap=50,
        progress=lambda done, total: calls.append((done, total)),
    )
    n = len(tile_boxes(300, 500, 200, 50))
    assert calls == [(i + 1, n) for i in range(n)]
    assert len(out) == 2
    for record in out:
        assert record["segmentation"].shape == (300, 500)
        assert record["segmentation"].dtype == bool
        assert max(_iou(record["segmentation"], t) for t in truth.values()) >= 0.99


def test_contained_fragment_merges_but_a_whole_object_does_not() -> None:
    """A fragment inside a bigger mask of the neighbour tile joins it; a complete small object
    inside the neighbour's big mask stays separate."""

    class Scripted:
        output_mode = "coco_rle"

        def __init__(self, per_tile):
            self.per_tile = per_tile
            self.index = 0

        def generate_records(self, tile):
            masks = self.per_tile[self.index](tile.shape[:2])
            self.index += 1
            stack = torch.from_numpy(np.stack(masks))
            boxes = []
            for m in masks:
                ys, xs = np.nonzero(m)
                boxes.append([xs.min(), ys.min(), xs.max(), ys.max()])
            n = len(masks)
            return MaskRecords(
                coco_rle(stack),
                torch.full((n,), 0.9),
                torch.full((n,), 0.97),
                torch.zeros(n, 2),
                torch.tensor(boxes),
                torch.zeros(n, 4).long(),
            )

    # 100 x 180 image, tiles of 100 with overlap 40: x in [0, 100) and [80, 180)
    def left(shape):
        part = np.zeros(shape, bool)
        part[40:50, 85:100] = True  # fragment at the right edge, partial (a darker half)
        small = np.zeros(shape, bool)
        small[10:20, 84:92] = True  # a whole small object in the overlap, away from edges
        return [part, small]

    def right(shape):
        whole = np.zeros(shape, bool)
        whole[30:60, 2:60] = True  # the object, seen whole; contains the left fragment
        whole[10:20, 2:15] = True  # ...and, in this tile, a region around the small object
        return [whole]

    out = generate_tiled(
        Scripted([left, right]), np.zeros((100, 180, 3), np.uint8), tile_size=100, overlap=20
    )
    assert tile_boxes(100, 180, 100, 20) == [(0, 0, 100, 100), (80, 0, 180, 100)]
    areas = sorted(r["area"] for r in out)
    assert areas == [80, 30 * 58 + 10 * 13]


# --- the real generator ------------------------------------------------------------------


def test_tiled_with_the_test_tiny_model_runs_and_is_well_formed() -> None:
    import tijeras
    from tijeras.automatic.generator import SamAutomaticMaskGenerator

    torch.manual_seed(0)
    model = tijeras.build_model("test-tiny")
    generator = SamAutomaticMaskGenerator(
        model,
        points_per_side=4,
        points_per_batch=8,
        pred_iou_thresh=0,
        stability_score_thresh=0,
        output_mode="coco_rle",
    )
    y, x = np.mgrid[0:96, 0:160]
    image = np.stack([x, y * 2, (x + y) % 256], axis=-1).astype(np.uint8)
    image[20:70, 60:120] = (250, 240, 30)
    calls = []
    records = generate_tiled(
        generator,
        image,
        tile_size=96,
        overlap=32,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert tile_boxes(96, 160, 96, 32) == [(0, 0, 96, 96), (64, 0, 160, 96)]
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]  # 2 point batches per tile, 2 tiles
    assert generator.progress is None  # the generator's own callback is restored
    assert records, "random weights with thresholds at 0 still give masks"
    keys = {
        "segmentation",
        "area",
        "bbox",
        "predicted_iou",
        "point_coords",
        "stability_score",
        "crop_box",
    }
    for record in records:
        assert set(record) == keys
        assert record["segmentation"]["size"] == [96, 160]
        mask = decode_coco_rle(record["segmentation"])
        assert record["area"] == int(mask.sum())
        x0, y0, w, h = record["bbox"]
        assert 0 <= x0 <= x0 + w < 160 and 0 <= y0 <= y0 + h < 96
        assert len(record["point_coords"]) == 1 and len(record["point_coords"][0]) == 2
        assert record["crop_box"] in ([0, 0, 96, 96], [64, 0, 96, 96], [0, 0, 160, 96])
