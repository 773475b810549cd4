"""MobileSAM: tijeras against the official ``mobile_sam`` package on the same weights and photo.

Each side runs in its own fresh process, as users run it (``python script.py``; nothing set in
the environment), alternated over rounds; every figure is the median over rounds, and each ratio
the median over rounds of official / tijeras (above 1: tijeras is faster). Measures: the encoder
(``set_image``), ``predict`` with one point and with a box, 64 boxes through ``predict_torch``,
and everything mode at ``points_per_side=32`` (encoder included), for the official code in
float32 and tijeras in float32 and bfloat16.

    python bench/mobile_sam_bench.py [--rounds 3] [--everything-rounds 1] [--skip-everything]
        [--skip-predictor] [--checkpoint mobile_sam.pt] [--json out.json]

Without ``--checkpoint`` the weights are the official architecture with random, perturbed
parameters and batch-norm statistics (the speed of both sides does not depend on the values).
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

from amg_bench import match
from sam_bench import DEFAULT_IMAGE, HERE, MEASURES, clean_env, mask_iou

VARIANTS = [("official", "meta", "float32"), ("tijeras", "tijeras", "float32")]
BF16 = ("tijeras-bf16", "tijeras", "bfloat16")
EVERYTHING = {"points_per_side": 32}


def make_checkpoint(path: Path) -> None:
    """The official MobileSAM with every parameter and batch-norm statistic perturbed."""
    import torch
    from mobile_sam import sam_model_registry

    torch.manual_seed(0)
    model = sam_model_registry["vit_t"]()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn_like(m.running_mean) * 0.1)
                m.running_var.copy_(torch.rand_like(m.running_var) + 0.5)
    torch.save(model.state_dict(), path)


def run(script: str, impl: str, dtype: str, checkpoint: Path, image: Path, *extra: str) -> dict:
    """One fresh worker process; returns the JSON line it prints."""
    cmd = [sys.executable, str(HERE / script), "--impl", impl, "--model", "vit_t"]
    cmd += ["--checkpoint", str(checkpoint), "--image", str(image), "--dtype", dtype, *extra]
    out = subprocess.run(cmd, env=clean_env(), check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarize(results: dict[str, list[dict]], keys: list[tuple[str, str]]) -> dict:
    """Medians per variant and median per-round ratios official / variant, printed as a table."""
    names = list(results)
    print(f"{'measure':<32}" + "".join(f"{n:>15}" for n in names) + "   ratios (official / x)")
    summary = {}
    for key, label in keys:
        medians = {n: statistics.median(r[key] for r in rs) for n, rs in results.items()}
        ratios = {
            n: statistics.median(o[key] / r[key] for o, r in zip(results["official"], rs))
            for n, rs in results.items()
            if n != "official"
        }
        summary[key] = {"median": medians, "ratio_official_over": ratios}
        row = "".join(f"{medians[n]:>15.4g}" for n in names)
        print(f"{label:<32}{row}   " + ", ".join(f"{n} {x:.2f}x" for n, x in ratios.items()))
    return summary


def bench_predictor(args: argparse.Namespace, checkpoint: Path, tmp: Path) -> dict:
    variants = VARIANTS + [BF16]
    results: dict[str, list[dict]] = {name: [] for name, _, _ in variants}
    for r in range(args.rounds):
        for name, impl, dtype in variants if r % 2 == 0 else variants[::-1]:
            masks = tmp / f"{name}-{r}.npz"
            res = run(
                "_sam_worker.py", impl, dtype, checkpoint, args.image, "--save-masks", str(masks)
            )
            results[name].append(res)
            print(
                f"round {r + 1} {name:>13}: " + ", ".join(f"{k}={res[k]:.4g}" for k, _ in MEASURES),
                flush=True,
            )
    summary = summarize(results, MEASURES)
    import numpy as np

    ious = {}
    for kind in ("point", "box"):
        ours, bf16, ref = (
            np.load(tmp / f"{n}-0.npz")[kind] for n in ("tijeras", "tijeras-bf16", "official")
        )
        ious[kind] = {
            "tijeras_vs_official": [mask_iou(a, b) for a, b in zip(ours, ref)],
            "bf16_vs_fp32": [mask_iou(a, b) for a, b in zip(bf16, ours)],
        }
        print(
            f"mask IoU, {kind}: tijeras fp32 vs official "
            f"{[round(x, 6) for x in ious[kind]['tijeras_vs_official']]}, bf16 vs fp32 "
            f"{[round(x, 4) for x in ious[kind]['bf16_vs_fp32']]}"
        )
    return {"results": results, "summary": summary, "iou": ious}


def bench_everything(args: argparse.Namespace, checkpoint: Path, tmp: Path) -> dict:
    variants = VARIANTS + [BF16]
    results: dict[str, list[dict]] = {name: [] for name, _, _ in variants}
    options = json.dumps(EVERYTHING)
    for r in range(args.everything_rounds):
        for name, impl, dtype in variants if r % 2 == 0 else variants[::-1]:
            out = tmp / f"amg-{name}-{r}.json"
            res = run(
                "_amg_worker.py", impl, dtype, checkpoint, args.image,
                "--options", options, "--save-masks", str(out),
            )  # fmt: skip
            results[name].append(res)
            print(
                f"everything round {r + 1} {name:>13}: {res['seconds']:.1f} s, "
                f"{res['masks']} masks, peak {res['peak_rss_mb']:.0f} MB",
                flush=True,
            )
    keys = [("seconds", "everything, pps 32 (s)"), ("peak_rss_mb", "everything peak memory (MB)")]
    summary = summarize(results, keys)
    rate, iou = match(tmp / "amg-tijeras-0.json", tmp / "amg-official-0.json")
    bf_rate, bf_iou = match(tmp / "amg-tijeras-bf16-0.json", tmp / "amg-tijeras-0.json")
    masks = {n: rs[0]["masks"] for n, rs in results.items()}
    print(
        f"everything masks {masks}; fp32 vs official matched {rate:.1%} (mean IoU {iou:.4f}); "
        f"bf16 vs fp32 matched {bf_rate:.1%} (mean IoU {bf_iou:.4f})"
    )
    agreement = {"fp32_vs_official": [rate, iou], "bf16_vs_fp32": [bf_rate, bf_iou]}
    return {"results": results, "summary": summary, "masks": masks, "agreement": agreement}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the predictor measures")
    parser.add_argument("--everything-rounds", type=int, default=1)
    parser.add_argument("--skip-everything", action="store_true")
    parser.add_argument("--skip-predictor", action="store_true")
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tijeras-mobile-bench-"))
    checkpoint = args.checkpoint
    if checkpoint is None:
        checkpoint = tmp / "mobile_sam_random.pt"
        make_checkpoint(checkpoint)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus; "
        f"image: {args.image.name} at 1500x1000",
        flush=True,
    )
    report = {}
    if not args.skip_predictor:
        report["predictor"] = bench_predictor(args, checkpoint, tmp)
    if not args.skip_everything:
        report["everything"] = bench_everything(args, checkpoint, tmp)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
