"""Quick quality check of the classical backend: mIoU with one click and with a box.

On every image/mask pair of ``coco_mval_subset`` (one object each): one positive click at the
object's interior point farthest from its boundary (``cv2.distanceTransform`` of the zero-padded
mask), the best-scoring of the three candidates; and the object's tight bounding box, one mask.
Prints per-image IoUs, the mIoU of each prompt, and the mean time per prompt (``predict`` only;
wall clock and CPU time of the process, the latter less sensitive to other work on the machine)
and per image (``set_image``). The box's first prompt on an image also computes the image's
Felzenszwalb regions, which later prompts reuse.

    python bench/classic_miou.py [--data DIR] [--image-size 512] [--iters 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def farthest_interior_point(mask: np.ndarray) -> tuple[float, float]:
    """xy of the mask pixel farthest from the boundary (the image border counts as outside)."""
    padded = np.pad(mask.astype(np.uint8), 1)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return float(x), float(y)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def pairs(data: Path) -> list[tuple[Path, Path]]:
    root = data / "coco_mval_subset"
    images = sorted((root / "images").glob("*.jpg"))
    if not images:
        raise SystemExit(f"no images in {root / 'images'} (pass --data DIR)")
    return [(path, root / "masks" / f"{path.stem}.png") for path in images]


def evaluate(data: Path, image_size: int, iters: int, limit: int | None) -> dict:
    import tijeras
    from tijeras.io import load_image, mask_to_box
    from tijeras.models.classic import CLASSIC
    from tijeras.models.classic.model import ClassicModel

    config = dataclasses.replace(CLASSIC, image_size=image_size, grabcut_iters=iters)
    predictor = tijeras.Predictor(ClassicModel(config).eval(), model_name="classic")
    rows, encode, click_t, box_t, click_cpu, box_cpu = [], [], [], [], [], []
    for image_path, mask_path in pairs(data)[:limit]:
        image = load_image(image_path)
        gt = load_image(mask_path)[..., 0] > 127
        start = time.perf_counter()
        predictor.set_image(image)
        encode.append(time.perf_counter() - start)

        x, y = farthest_interior_point(gt)
        start, cpu = time.perf_counter(), time.process_time()
        click = predictor.predict(np.array([[x, y]]), np.array([1]), multimask_output=True)
        click_t.append(time.perf_counter() - start)
        click_cpu.append(time.process_time() - cpu)
        best = int(np.argmax(click.scores))

        box = np.array(mask_to_box(gt), dtype=np.float64)
        start, cpu = time.perf_counter(), time.process_time()
        boxed = predictor.predict(box=box, multimask_output=False)
        box_t.append(time.perf_counter() - start)
        box_cpu.append(time.process_time() - cpu)

        oracle = max(iou(m, gt) for m in click.masks)
        row = {
            "image": image_path.name,
            "click_iou": iou(click.masks[best], gt),
            "click_oracle_iou": oracle,
            "box_iou": iou(boxed.masks[0], gt),
        }
        rows.append(row)
        print(
            f"{row['image']:40s} click {row['click_iou']:.3f} (best of 3 {oracle:.3f})  "
            f"box {row['box_iou']:.3f}",
            flush=True,
        )
    return {
        "image_size": image_size,
        "grabcut_iters": iters,
        "pairs": len(rows),
        "miou_click": statistics.mean(r["click_iou"] for r in rows),
        "miou_click_oracle": statistics.mean(r["click_oracle_iou"] for r in rows),
        "miou_box": statistics.mean(r["box_iou"] for r in rows),
        "ms_click": 1000 * statistics.mean(click_t),
        "ms_box": 1000 * statistics.mean(box_t),
        "cpu_ms_click": 1000 * statistics.mean(click_cpu),
        "cpu_ms_box": 1000 * statistics.mean(box_cpu),
        "ms_set_image": 1000 * statistics.mean(encode),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder")
    parser.add_argument("--image-size", type=int, nargs="+", default=[512])
    parser.add_argument("--iters", type=int, nargs="+", default=[3])
    parser.add_argument("--limit", type=int, default=None, help="first N pairs only")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    results = []
    for size in args.image_size:
        for iters in args.iters:
            result = evaluate(args.data, size, iters, args.limit)
            results.append(result)
            print(
                f"image_size {size} iters {iters}: mIoU click {result['miou_click']:.3f} "
                f"(best of 3 {result['miou_click_oracle']:.3f}), box {result['miou_box']:.3f}; "
                f"ms/prompt click {result['ms_click']:.0f}, box {result['ms_box']:.0f} "
                f"(CPU {result['cpu_ms_click']:.0f}, {result['cpu_ms_box']:.0f}); "
                f"set_image {result['ms_set_image']:.0f} ms ({result['pairs']} pairs)",
                flush=True,
            )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
