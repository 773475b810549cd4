"""Everything mode: tijeras against Meta's SamAutomaticMaskGenerator, same weights and photo.

Each side runs in its own fresh process as users run it, alternated over rounds; the reported
ratio is the median over rounds of Meta's time / tijeras' time. The encoder is counted on both
sides. bfloat16 masks are matched against tijeras' float32 masks (match rate and mean IoU).

    python bench/amg_bench.py [--rounds 2] [--configs default,keep-all,pps16,crops]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from sam_bench import DEFAULT_IMAGE, HERE, clean_env, make_checkpoint

CONFIGS = {
    "default": {"points_per_side": 32},
    "keep-all": {"points_per_side": 32, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0},
    "pps16": {"points_per_side": 16},
    "crops": {"points_per_side": 32, "crop_n_layers": 1},
    # one crop layer at 16 points per side, every candidate kept: the crop path at a fraction
    # of "crops"' cost (with random weights and default thresholds no mask survives, and Meta's
    # generator fails on a crop layer without masks: box_area of an empty tensor)
    "crops16": {
        "points_per_side": 16,
        "crop_n_layers": 1,
        "pred_iou_thresh": 0.0,
        "stability_score_thresh": 0.0,
    },
}


def run(impl: str, dtype: str, options: dict, checkpoint: Path, image: Path, masks: Path) -> dict:
    import subprocess

    cmd = [
        sys.executable,
        str(HERE / "_amg_worker.py"),
        "--impl",
        impl,
        "--checkpoint",
        str(checkpoint),
        "--image",
        str(image),
        "--dtype",
        dtype,
        "--options",
        json.dumps(options),
        "--save-masks",
        str(masks),
    ]
    out = subprocess.run(cmd, env=clean_env(), check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def match(a_path: Path, b_path: Path, min_iou: float = 0.9) -> tuple[float, float]:
    """Share of masks in ``a`` with a partner in ``b`` at IoU >= min_iou, and their mean IoU."""
    from pycocotools import mask as mask_utils

    a = [r["segmentation"] for r in json.loads(a_path.read_text())]
    b = [r["segmentation"] for r in json.loads(b_path.read_text())]
    if not a or not b:
        return (1.0 if not a and not b else 0.0), 0.0
    ious = mask_utils.iou(a, b, [0] * len(b))
    best = ious.max(axis=1)
    matched = best >= min_iou
    return float(matched.mean()), float(best[matched].mean()) if matched.any() else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--configs", default="default,keep-all,pps16,crops")
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tijeras-amg-"))
    checkpoint = args.checkpoint
    if checkpoint is None:
        checkpoint = tmp / "vit_b_random.pth"
        make_checkpoint(checkpoint)
    sides = [("meta", "float32"), ("tijeras", "float32"), ("tijeras", "bfloat16")]
    report = {}
    for name in args.configs.split(","):
        options = CONFIGS[name]
        results: dict[str, list[dict]] = {f"{i}-{d}": [] for i, d in sides}
        for r in range(args.rounds):
            for impl, dtype in sides if r % 2 == 0 else sides[::-1]:
                key = f"{impl}-{dtype}"
                res = run(
                    impl, dtype, options, checkpoint, args.image, tmp / f"{name}-{key}-{r}.json"
                )
                results[key].append(res)
                print(
                    f"{name} round {r + 1} {key:>16}: {res['seconds']:.1f} s, "
                    f"{res['masks']} masks, peak {res['peak_rss_mb']:.0f} MB",
                    flush=True,
                )
        meta = results["meta-float32"]
        summary = {}
        for key, rs in results.items():
            summary[key] = {
                "seconds": statistics.median(x["seconds"] for x in rs),
                "masks": rs[0]["masks"],
                "peak_rss_mb": statistics.median(x["peak_rss_mb"] for x in rs),
                "speedup": statistics.median(m["seconds"] / x["seconds"] for m, x in zip(meta, rs)),
            }
        rate, iou = match(
            tmp / f"{name}-tijeras-bfloat16-0.json", tmp / f"{name}-tijeras-float32-0.json"
        )
        fp_rate, fp_iou = match(
            tmp / f"{name}-tijeras-float32-0.json", tmp / f"{name}-meta-float32-0.json"
        )
        summary["bf16_vs_fp32"] = {"match_rate": rate, "mean_iou": iou}
        summary["fp32_vs_meta"] = {"match_rate": fp_rate, "mean_iou": fp_iou}
        report[name] = summary
        print(
            f"{name}: "
            + "; ".join(
                f"{k} {v['seconds']:.1f} s ({v['speedup']:.2f}x, {v['masks']} masks, "
                f"{v['peak_rss_mb']:.0f} MB)"
                for k, v in summary.items()
                if "seconds" in v
            )
        )
        print(
            f"{name}: bf16 vs fp32 masks matched {rate:.1%} (mean IoU {iou:.4f}); "
            f"fp32 vs Meta matched {fp_rate:.1%} (mean IoU {fp_iou:.4f})",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
