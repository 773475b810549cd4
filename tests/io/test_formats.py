"""Tests of the mask formats: RLEs, polygons, COCO JSON and YOLO segmentation labels."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tijeras.errors import TijerasError
from tijeras.io.coco import coco_dataset, merge_coco, segmentation_to_mask, write_coco
from tijeras.io.polygon import Polygon, mask_to_polygons, polygons_to_coco, polygons_to_mask
from tijeras.io.rle import (
    coco_rle,
    coco_rle_one,
    decode_coco_rle,
    masks_to_uncompressed_rle,
    rle_area,
    uncompressed_rle_to_mask,
    uncompressed_to_coco_rle,
)
from tijeras.io.yolo import write_yolo, yolo_segmentation_lines

mask_api = pytest.importorskip("pycocotools.mask")


# --- fixtures and helpers ------------------------------------------------------------------


def _random(height: int, width: int, seed: int = 0, p: float = 0.5) -> np.ndarray:
    return np.random.default_rng(seed).random((height, width)) < p


def _corner(height: int, width: int, row: int, col: int) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    mask[row, col] = True
    return mask


def _checkerboard(height: int, width: int) -> np.ndarray:
    return (np.add.outer(np.arange(height), np.arange(width)) % 2).astype(bool)


def _rect(shape: tuple[int, int], rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[rows, cols] = True
    return mask


def _disc(shape: tuple[int, int], centre: tuple[int, int], radius: float) -> np.ndarray:
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2


def _square_with_hole() -> np.ndarray:
    mask = _rect((40, 40), slice(5, 30), slice(5, 30))
    mask[12:20, 12:20] = False
    return mask


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


MASKS = {
    "1x1 zero": np.zeros((1, 1), bool),
    "1x1 one": np.ones((1, 1), bool),
    "7x13 random": _random(7, 13),
    "480x641 random": _random(480, 641, seed=1, p=0.3),
    "all zero": np.zeros((9, 5), bool),
    "all one": np.ones((9, 5), bool),
    "top-left": _corner(6, 11, 0, 0),
    "top-right": _corner(6, 11, 0, 10),
    "bottom-left": _corner(6, 11, 5, 0),
    "bottom-right": _corner(6, 11, 5, 10),
    "checkerboard": _checkerboard(8, 7),
    "disc": _disc((31, 17), (15, 8), 7),
}


def _fortran(mask: np.ndarray) -> np.ndarray:
    return np.asfortranarray(mask[:, :, None].astype(np.uint8))


# --- uncompressed RLE ----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(MASKS))
def test_uncompressed_rle_matches_pycocotools(name: str) -> None:
    mask = MASKS[name]
    (rle,) = masks_to_uncompressed_rle(torch.from_numpy(mask)[None])
    height, width = mask.shape
    assert rle["size"] == [height, width]
    assert (rle["counts"][0] == 0) == bool(mask[0, 0])
    reference = mask_api.encode(_fortran(mask))[0]
    assert mask_api.frPyObjects(rle, height, width)["counts"] == reference["counts"]
    assert np.array_equal(uncompressed_rle_to_mask(rle), mask)
    assert rle_area(rle) == int(mask.sum())


def test_uncompressed_rle_starts_with_zero_run_when_first_pixel_is_set() -> None:
    (rle,) = masks_to_uncompressed_rle(torch.ones(1, 2, 3, dtype=torch.bool))
    assert rle["counts"] == [0, 6]
    (rle,) = masks_to_uncompressed_rle(torch.zeros(1, 2, 3, dtype=torch.bool))
    assert rle["counts"] == [6]


def test_uncompressed_rle_is_column_major() -> None:
    mask = np.array([[1, 1, 0], [1, 0, 0]], bool)  # row-major would be [0, 2, 1, 1, 2]
    (rle,) = masks_to_uncompressed_rle(torch.from_numpy(mask)[None])
    assert rle["counts"] == [0, 3, 3]


def test_uncompressed_rle_batch_equals_single_masks() -> None:
    masks = np.stack([_random(17, 23, seed) for seed in range(3)] + [np.zeros((17, 23), bool)])
    batch = masks_to_uncompressed_rle(torch.from_numpy(masks))
    singles = [masks_to_uncompressed_rle(torch.from_numpy(m)[None])[0] for m in masks]
    assert batch == singles
    assert json.loads(json.dumps(batch)) == batch
    assert all(isinstance(count, int) for rle in batch for count in rle["counts"])


def test_uncompressed_rle_accepts_numbers_and_numpy() -> None:
    mask = _random(5, 8, seed=3)
    expected = masks_to_uncompressed_rle(torch.from_numpy(mask)[None])
    assert masks_to_uncompressed_rle(torch.from_numpy(mask[None] * 255.0)) == expected
    assert masks_to_uncompressed_rle(mask[None].astype(np.uint8)) == expected


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_uncompressed_rle_on_cuda() -> None:
    masks = torch.from_numpy(np.stack([_random(33, 47, seed) for seed in range(4)]))
    assert masks_to_uncompressed_rle(masks.cuda()) == masks_to_uncompressed_rle(masks)
    assert coco_rle(masks.cuda()) == coco_rle(masks)


def test_empty_batches_give_empty_lists() -> None:
    assert masks_to_uncompressed_rle(torch.zeros(0, 4, 5, dtype=torch.bool)) == []
    assert coco_rle(np.zeros((0, 4, 5), bool)) == []
    assert coco_rle(torch.zeros(0, 4, 5, dtype=torch.bool)) == []


@pytest.mark.parametrize("shape", [(4, 5), (1, 2, 3, 4), (2, 0, 3)])
def test_rle_rejects_bad_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(TijerasError, match="B x H x W"):
        masks_to_uncompressed_rle(torch.zeros(shape, dtype=torch.bool))
    with pytest.raises(TijerasError, match="B x H x W"):
        coco_rle(np.zeros(shape, bool))


def test_uncompressed_rle_rejects_bad_counts() -> None:
    with pytest.raises(TijerasError, match="sum to H \\* W = 6"):
        uncompressed_rle_to_mask({"size": [2, 3], "counts": [1, 2]})
    with pytest.raises(TijerasError, match="'size'"):
        uncompressed_rle_to_mask({"counts": [6]})
    with pytest.raises(TijerasError, match="'size'"):
        uncompressed_rle_to_mask({"size": [2], "counts": [2]})


# --- compressed COCO RLE -------------------------------------------------------------------


@pytest.mark.parametrize("name", list(MASKS))
def test_coco_rle_round_trip(name: str) -> None:
    mask = MASKS[name]
    rle = coco_rle_one(mask)
    assert isinstance(rle["counts"], str)
    assert rle["counts"] == mask_api.encode(_fortran(mask))[0]["counts"].decode()
    assert json.loads(json.dumps(rle)) == rle
    assert np.array_equal(decode_coco_rle(rle), mask)
    as_bytes = {"size": rle["size"], "counts": rle["counts"].encode()}
    assert np.array_equal(decode_coco_rle(as_bytes), mask)


def test_coco_rle_batch_from_numpy_and_torch() -> None:
    masks = np.stack([MASKS["480x641 random"], ~MASKS["480x641 random"], _random(480, 641, 5)])
    from_numpy = coco_rle(masks)
    assert from_numpy == coco_rle(torch.from_numpy(masks))
    assert from_numpy == coco_rle(masks.astype(np.uint8) * 255)
    assert from_numpy == [coco_rle_one(mask) for mask in masks]
    for rle, mask in zip(from_numpy, masks, strict=True):
        assert rle["size"] == [480, 641]
        assert np.array_equal(decode_coco_rle(rle), mask)


def test_coco_rle_of_non_contiguous_view() -> None:
    masks = np.stack([_random(20, 30, seed) for seed in range(4)])
    view = masks[::2, 1:-1, ::3]
    assert coco_rle(view) == [coco_rle_one(np.ascontiguousarray(m)) for m in view]


def test_decode_coco_rle_accepts_uncompressed() -> None:
    mask = MASKS["7x13 random"]
    (rle,) = masks_to_uncompressed_rle(torch.from_numpy(mask)[None])
    assert np.array_equal(decode_coco_rle(rle), mask)


def test_uncompressed_to_coco_rle_matches_direct_encoding() -> None:
    masks = np.stack([MASKS["480x641 random"], np.ones((480, 641), bool)])
    uncompressed = masks_to_uncompressed_rle(torch.from_numpy(masks))
    assert uncompressed_to_coco_rle(uncompressed) == coco_rle(masks)
    assert uncompressed_to_coco_rle([]) == []
    with pytest.raises(TijerasError, match="sum to H \\* W = 6"):
        uncompressed_to_coco_rle([{"size": [2, 3], "counts": [1, 2]}])
    with pytest.raises(TijerasError, match="list of ints"):
        uncompressed_to_coco_rle([{"size": [2, 3], "counts": "abc"}])


def test_format_modules_do_not_import_torch() -> None:
    code = (
        "import sys, tijeras.io, tijeras.io.rle, tijeras.io.polygon, tijeras.io.coco, "
        "tijeras.io.yolo; assert 'torch' not in sys.modules and 'pycocotools' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_coco_rle_one_rejects_a_batch() -> None:
    with pytest.raises(TijerasError, match="H x W"):
        coco_rle_one(np.zeros((2, 3, 4), bool))


# --- polygons ------------------------------------------------------------------------------


def test_square_with_hole_is_one_polygon_with_one_hole() -> None:
    mask = _square_with_hole()
    (polygon,) = mask_to_polygons(mask, tolerance=0)
    assert isinstance(polygon, Polygon)
    assert len(polygon.holes) == 1
    assert polygon.exterior.shape[1] == 2 and polygon.exterior.dtype == np.float64
    # Pixel-corner convention: vertices on border pixel centres.
    assert polygon.exterior.min(axis=0).tolist() == [5.5, 5.5]
    assert polygon.exterior.max(axis=0).tolist() == [29.5, 29.5]
    assert np.array_equal(polygons_to_mask([polygon], 40, 40), mask)


@pytest.mark.parametrize(
    ("rows", "cols"), [(slice(10, 20), slice(20, 40)), (slice(0, 3), slice(0, 5))]
)
def test_rectangle_round_trip_is_exact(rows: slice, cols: slice) -> None:
    mask = _rect((24, 48), rows, cols)
    for tolerance in (0.0, 1.0):
        polygons = mask_to_polygons(mask, tolerance=tolerance)
        assert np.array_equal(polygons_to_mask(polygons, 24, 48), mask)


THIN = [(slice(0, 1), slice(0, 5)), (slice(3, 9), slice(4, 5)), (slice(2, 4), slice(0, 5))]


@pytest.mark.parametrize(("rows", "cols"), THIN)
def test_thin_rectangles_survive_only_without_simplification(rows: slice, cols: slice) -> None:
    mask = _rect((24, 48), rows, cols)
    polygons = mask_to_polygons(mask, tolerance=0)
    assert np.array_equal(polygons_to_mask(polygons, 24, 48), mask)
    assert mask_to_polygons(mask, tolerance=1.0) == []  # collapses below 3 vertices


def test_rectangle_polygon_runs_through_border_pixel_centres() -> None:
    mask = _rect((24, 48), slice(10, 20), slice(20, 40))
    (polygon,) = mask_to_polygons(mask, tolerance=1.0)
    assert len(polygon.exterior) == 4
    assert sorted(map(tuple, polygon.exterior.tolist())) == [
        (20.5, 10.5),
        (20.5, 19.5),
        (39.5, 10.5),
        (39.5, 19.5),
    ]
    assert polygon.area == 19 * 9


def test_disc_round_trip() -> None:
    mask = _disc((80, 90), (40, 44), 25)
    exact = polygons_to_mask(mask_to_polygons(mask, tolerance=0), 80, 90)
    assert np.array_equal(exact, mask)
    assert _iou(polygons_to_mask(mask_to_polygons(mask, tolerance=1.0), 80, 90), mask) >= 0.98


def test_tolerance_reduces_vertices() -> None:
    mask = _disc((80, 90), (40, 44), 25)
    counts = [len(mask_to_polygons(mask, tolerance=t)[0].exterior) for t in (0.0, 1.0, 3.0)]
    assert counts[0] > counts[1] > counts[2] >= 3


def test_two_blobs_give_two_polygons() -> None:
    mask = _disc((60, 100), (30, 25), 12) | _disc((60, 100), (30, 75), 12)
    polygons = mask_to_polygons(mask)
    assert len(polygons) == 2
    assert all(not polygon.holes for polygon in polygons)


def test_part_inside_a_hole_survives_rasterisation() -> None:
    mask = _rect((40, 40), slice(2, 38), slice(2, 38))
    mask[8:32, 8:32] = False
    mask[15:25, 15:25] = True
    polygons = mask_to_polygons(mask, tolerance=0)
    assert len(polygons) == 2
    assert np.array_equal(polygons_to_mask(polygons[::-1], 40, 40), mask)
    assert np.array_equal(polygons_to_mask(polygons, 40, 40), mask)


def test_min_area_drops_specks() -> None:
    mask = _rect((30, 30), slice(5, 20), slice(5, 20))
    mask[25:27, 25:28] = True
    assert len(mask_to_polygons(mask, tolerance=0)) == 2
    (kept,) = mask_to_polygons(mask, tolerance=0, min_area=5)
    assert kept.exterior.min(axis=0).tolist() == [5.5, 5.5]


def test_tiny_parts_without_three_vertices_are_dropped() -> None:
    assert mask_to_polygons(_corner(5, 5, 2, 2)) == []
    assert mask_to_polygons(np.zeros((5, 5), bool)) == []


def test_polygons_to_coco_flattens_rings() -> None:
    (polygon,) = mask_to_polygons(_square_with_hole(), tolerance=1.0)
    rings = polygons_to_coco([polygon])
    assert len(rings) == 1
    assert rings[0] == polygon.exterior.reshape(-1).tolist()
    with_holes = polygons_to_coco([polygon], include_holes=True)
    assert len(with_holes) == 2
    assert all(isinstance(v, float) and len(ring) % 2 == 0 for ring in with_holes for v in ring)


def test_polygon_rejects_bad_masks() -> None:
    with pytest.raises(TijerasError, match="H x W"):
        mask_to_polygons(np.zeros((2, 3, 4), bool))
    with pytest.raises(TijerasError, match="tolerance"):
        mask_to_polygons(np.zeros((3, 4), bool), tolerance=-1)


# --- COCO ----------------------------------------------------------------------------------


def _records(shape: tuple[int, int]) -> tuple[list[dict], list[np.ndarray]]:
    """SAM-like records in all three segmentation forms, and their masks."""
    masks = [
        _rect(shape, slice(10, 50), slice(20, 90)),
        _disc(shape, (60, 60), 30),
        _square_with_hole_at(shape),
    ]
    uncompressed = masks_to_uncompressed_rle(torch.from_numpy(masks[1])[None])[0]
    segmentations = [masks[0], uncompressed, coco_rle_one(masks[2])]
    records = []
    for index, (segmentation, mask) in enumerate(zip(segmentations, masks, strict=True)):
        rows, cols = np.nonzero(mask)
        records.append(
            {
                "segmentation": segmentation,
                "area": int(mask.sum()),
                "bbox": [cols.min(), rows.min(), np.ptp(cols) + 1, np.ptp(rows) + 1],
                "predicted_iou": np.float32(0.9 - index / 10),
                "stability_score": 0.95,
                "point_coords": [[float(cols.mean()), float(rows.mean())]],
                "crop_box": [0, 0, shape[1], shape[0]],
            }
        )
    return records, masks


def _square_with_hole_at(shape: tuple[int, int]) -> np.ndarray:
    mask = _rect(shape, slice(70, 110), slice(100, 140))
    mask[80:100, 110:130] = False
    return mask


def _load(dataset: dict, path: Path):
    from pycocotools.coco import COCO

    write_coco(dataset, path)
    return COCO(str(path))


def test_coco_rle_mode_loads_and_decodes_exactly(tmp_path: Path) -> None:
    records, masks = _records((120, 160))
    dataset = coco_dataset(records, 7, "img.jpg", 120, 160, category_name="thing")
    coco = _load(dataset, tmp_path / "nested" / "coco.json")
    assert coco.getImgIds() == [7]
    assert coco.loadCats(coco.getCatIds())[0]["name"] == "thing"
    annotations = coco.loadAnns(coco.getAnnIds(imgIds=[7]))
    assert [ann["id"] for ann in annotations] == [1, 2, 3]
    for ann, mask, record in zip(annotations, masks, records, strict=True):
        assert np.array_equal(coco.annToMask(ann).astype(bool), mask)
        assert ann["area"] == float(mask.sum()) and isinstance(ann["area"], float)
        assert ann["bbox"] == [float(v) for v in record["bbox"]]
        assert ann["iscrowd"] == 0 and ann["category_id"] == 1 and ann["image_id"] == 7
        assert ann["score"] == pytest.approx(float(record["predicted_iou"]))
        assert ann["stability_score"] == 0.95
        assert ann["point_coords"] == record["point_coords"]
        assert isinstance(ann["segmentation"]["counts"], str)


def test_coco_computes_missing_area_and_bbox() -> None:
    records, masks = _records((120, 160))
    bare = [{"segmentation": record["segmentation"]} for record in records]
    computed = coco_dataset(bare, 1, "a.png", 120, 160)["annotations"]
    given = coco_dataset(records, 1, "a.png", 120, 160)["annotations"]
    for ann, reference, mask in zip(computed, given, masks, strict=True):
        assert ann["area"] == reference["area"] == float(mask.sum())
        assert ann["bbox"] == reference["bbox"]
        assert "score" not in ann


def test_coco_polygon_mode(tmp_path: Path) -> None:
    records, masks = _records((120, 160))
    dataset = coco_dataset(records, 1, "img.jpg", 120, 160, segmentation="polygon")
    coco = _load(dataset, tmp_path / "poly.json")
    annotations = coco.loadAnns(coco.getAnnIds())
    assert isinstance(annotations[0]["segmentation"], list)
    assert isinstance(annotations[1]["segmentation"], list)
    assert isinstance(annotations[2]["segmentation"], dict)  # has a hole: RLE fallback
    for ann, mask in zip(annotations[:2], masks[:2], strict=True):
        assert _iou(coco.annToMask(ann).astype(bool), mask) >= 0.95
    assert np.array_equal(coco.annToMask(annotations[2]).astype(bool), masks[2])


def test_coco_polygon_mode_falls_back_for_specks() -> None:
    records = [{"segmentation": _corner(10, 10, 4, 4)}]
    (ann,) = coco_dataset(records, 1, "a.png", 10, 10, segmentation="polygon")["annotations"]
    assert isinstance(ann["segmentation"], dict)


def test_coco_rejects_bad_input() -> None:
    with pytest.raises(TijerasError, match="record 0 has no 'segmentation'"):
        coco_dataset([{"area": 1}], 1, "a.png", 10, 10)
    with pytest.raises(TijerasError, match="10 x 10"):
        coco_dataset([{"segmentation": np.zeros((10, 11), bool)}], 1, "a.png", 10, 10)
    with pytest.raises(TijerasError, match="10 x 10"):
        coco_dataset([{"segmentation": coco_rle_one(np.zeros((9, 10)))}], 1, "a.png", 10, 10)
    with pytest.raises(TijerasError, match="segmentation must be one of"):
        coco_dataset([], 1, "a.png", 10, 10, segmentation="mask")


def test_merge_coco_gives_unique_ids(tmp_path: Path) -> None:
    records, _ = _records((120, 160))
    first = coco_dataset(records, 1, "a.jpg", 120, 160)
    second = coco_dataset(records[:2], 1, "b.jpg", 120, 160)
    merged = merge_coco([first, second])
    assert [image["id"] for image in merged["images"]] == [1, 2]
    assert [ann["id"] for ann in merged["annotations"]] == [1, 2, 3, 4, 5]
    assert [ann["image_id"] for ann in merged["annotations"]] == [1, 1, 1, 2, 2]
    assert merged["categories"] == [{"id": 1, "name": "object", "supercategory": "object"}]
    coco = _load(merged, tmp_path / "merged.json")
    assert len(coco.getAnnIds(imgIds=[2])) == 2


def test_merge_coco_keeps_unique_image_ids() -> None:
    first = coco_dataset([], 42, "a.jpg", 10, 10)
    second = coco_dataset([{"segmentation": _corner(10, 10, 1, 1)}], 7, "b.jpg", 10, 10)
    merged = merge_coco([first, second])
    assert [image["id"] for image in merged["images"]] == [42, 7]
    assert merged["annotations"][0]["image_id"] == 7
    with pytest.raises(TijerasError, match="dataset 1 has no 'images'"):
        merge_coco([first, {"annotations": []}])


def test_segmentation_to_mask_accepts_all_forms() -> None:
    mask = _disc((20, 30), (10, 12), 6)
    (uncompressed,) = masks_to_uncompressed_rle(torch.from_numpy(mask)[None])
    for form in (mask, torch.from_numpy(mask), uncompressed, coco_rle_one(mask)):
        assert np.array_equal(segmentation_to_mask(form, 20, 30), mask)


# --- YOLO ----------------------------------------------------------------------------------


def test_yolo_rectangle_line(tmp_path: Path) -> None:
    height, width = 60, 80
    mask = _rect((height, width), slice(10, 30), slice(20, 50))
    empty = np.zeros((height, width), bool)
    lines = yolo_segmentation_lines(
        [{"segmentation": mask}, {"segmentation": empty}], height, width, class_id=3
    )
    assert len(lines) == 1
    fields = lines[0].split()
    assert fields[0] == "3"
    values = np.array([float(v) for v in fields[1:]])
    assert values.size % 2 == 0 and values.size >= 6
    assert ((values >= 0) & (values <= 1)).all()
    assert all(len(v.split(".")[1]) == 6 for v in fields[1:])
    xy = values.reshape(-1, 2) * [width, height]
    assert np.allclose(xy.min(axis=0), [20, 10], atol=1)
    assert np.allclose(xy.max(axis=0), [50, 30], atol=1)
    path = tmp_path / "labels" / "img.txt"
    write_yolo(lines, path)
    assert path.read_text() == lines[0] + "\n"


def test_yolo_keeps_largest_part() -> None:
    mask = _rect((50, 50), slice(5, 40), slice(5, 40))
    mask[44:48, 44:48] = True
    (line,) = yolo_segmentation_lines([{"segmentation": coco_rle_one(mask)}], 50, 50)
    xy = np.array([float(v) for v in line.split()[1:]]).reshape(-1, 2) * 50
    assert xy.max() < 41


def test_yolo_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    write_yolo([], path)
    assert path.read_text() == ""
