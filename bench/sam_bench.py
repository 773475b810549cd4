"""SAM ViT-B: tijeras against Meta's segment_anything on the same weights and photo.

Each side runs in its own fresh process, as users run it (``python script.py``; nothing set in
the environment), alternated over several rounds; the figure reported for each measure is the
median over rounds of the per-round ratio Meta / tijeras (above 1: tijeras is faster).

    python bench/sam_bench.py [--rounds 3] [--checkpoint sam_vit_b_01ec64.pth] [--json out.json]

Without ``--checkpoint`` the weights are Meta's ViT-B with random, perturbed parameters (the
speed of both sides does not depend on the values). Extra variants, for reference only: Meta's
code under jemalloc (``--with-jemalloc``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_IMAGE = HERE.parents[1] / "shared" / "data" / "sam_demo_images" / "images" / "truck.jpg"
MEASURES = [
    ("set_image_s", "set_image (s)"),
    ("predict_point_ms", "predict, one point (ms)"),
    ("predict_box_ms", "predict, box (ms)"),
    ("predict_torch_64_boxes_ms", "predict_torch, 64 boxes (ms)"),
    ("peak_rss_mb", "peak memory (MB)"),
]
JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"


def make_checkpoint(path: Path) -> None:
    import torch
    from segment_anything import sam_model_registry

    torch.manual_seed(0)
    model = sam_model_registry["vit_b"]()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    torch.save(model.state_dict(), path)


def clean_env(jemalloc: bool = False) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIJERAS_", "MALLOC_"))}
    env.pop("LD_PRELOAD", None)
    env.pop("THP_MEM_ALLOC_ENABLE", None)
    src = str(HERE.parent / "src")
    env["PYTHONPATH"] = (
        src + os.pathsep + env.get("PYTHONPATH", "") if env.get("PYTHONPATH") else src
    )
    if jemalloc:
        env["LD_PRELOAD"] = JEMALLOC
        env["MALLOC_CONF"] = "background_thread:false,dirty_decay_ms:-1,muzzy_decay_ms:-1"
    return env


def run_worker(variant: dict, checkpoint: Path, image: Path, masks: Path | None) -> dict:
    cmd = [
        sys.executable,
        str(HERE / "_sam_worker.py"),
        "--impl",
        variant["impl"],
        "--checkpoint",
        str(checkpoint),
        "--image",
        str(image),
        "--dtype",
        variant["dtype"],
    ]
    if masks is not None:
        cmd += ["--save-masks", str(masks)]
    out = subprocess.run(
        cmd,
        env=clean_env(variant.get("jemalloc", False)),
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def mask_iou(a, b) -> float:
    inter = (a & b).sum()
    union = (a | b).sum()
    return float(inter / union) if union else 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--with-jemalloc", action="store_true")
    parser.add_argument(
        "--mixed", action="store_true", help="also run a bfloat16 encoder with a float32 decoder"
    )
    args = parser.parse_args()

    import numpy as np

    tmp = Path(tempfile.mkdtemp(prefix="tijeras-bench-"))
    checkpoint = args.checkpoint
    if checkpoint is None:
        checkpoint = tmp / "vit_b_random.pth"
        make_checkpoint(checkpoint)
    variants = [
        {"name": "meta", "impl": "meta", "dtype": "float32"},
        {"name": "tijeras", "impl": "tijeras", "dtype": "float32"},
        {"name": "tijeras-bf16", "impl": "tijeras", "dtype": "bfloat16"},
    ]
    if args.mixed:
        variants.append({"name": "tijeras-bf16enc", "impl": "tijeras", "dtype": "bfloat16-encoder"})
    if args.with_jemalloc and Path(JEMALLOC).exists():
        variants.append(
            {"name": "meta+jemalloc", "impl": "meta", "dtype": "float32", "jemalloc": True}
        )
    results: dict[str, list[dict]] = {v["name"]: [] for v in variants}
    for r in range(args.rounds):
        order = variants if r % 2 == 0 else variants[::-1]
        for v in order:
            masks = tmp / f"{v['name']}-{r}.npz"
            res = run_worker(v, checkpoint, args.image, masks)
            results[v["name"]].append(res)
            print(
                f"round {r + 1} {v['name']:>14}: "
                + ", ".join(f"{k}={res[k]:.4g}" for k, _ in MEASURES),
                flush=True,
            )

    print(
        f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus; "
        f"rounds: {args.rounds}; image: {args.image.name} at 1500x1000"
    )
    summary: dict[str, dict] = {}
    header = f"{'measure':<32}" + "".join(f"{v['name']:>16}" for v in variants)
    print(header + "   ratios (meta / variant, median of rounds)")
    for key, label in MEASURES:
        medians = {n: statistics.median(x[key] for x in rs) for n, rs in results.items()}
        ratios = {}
        for n, rs in results.items():
            if n == "meta":
                continue
            ratios[n] = statistics.median(m[key] / t[key] for m, t in zip(results["meta"], rs))
        summary[key] = {"median": medians, "ratio_meta_over": ratios}
        print(
            f"{label:<32}"
            + "".join(f"{medians[v['name']]:>16.4g}" for v in variants)
            + "   "
            + ", ".join(f"{n} {x:.2f}x" for n, x in ratios.items())
        )

    ious = {}
    for kind in ("point", "box"):
        a = np.load(tmp / "tijeras-0.npz")[kind]
        b = np.load(tmp / "tijeras-bf16-0.npz")[kind]
        m = np.load(tmp / "meta-0.npz")[kind]
        ious[kind] = {
            "bf16_vs_fp32": [mask_iou(x, y) for x, y in zip(a, b)],
            "tijeras_vs_meta": [mask_iou(x, y) for x, y in zip(a, m)],
        }
        print(
            f"mask IoU, {kind}: tijeras fp32 vs Meta {ious[kind]['tijeras_vs_meta']}, "
            f"bf16 vs fp32 {[round(x, 4) for x in ious[kind]['bf16_vs_fp32']]}"
        )
        if args.mixed:
            c = np.load(tmp / "tijeras-bf16enc-0.npz")[kind]
            ious[kind]["bf16enc_vs_fp32"] = [mask_iou(x, y) for x, y in zip(a, c)]
            print(
                f"mask IoU, {kind}: bf16 encoder + fp32 decoder vs fp32 "
                f"{[round(x, 4) for x in ious[kind]['bf16enc_vs_fp32']]}"
            )
    if args.json:
        args.json.write_text(
            json.dumps({"results": results, "summary": summary, "iou": ious}, indent=2)
        )


if __name__ == "__main__":
    main()
