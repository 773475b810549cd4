"""SAM 2 video tracking: tijeras against Meta's ``SAM2VideoPredictor`` on the same weights.

Each side runs in its own fresh process (``bench/_video_worker.py``), alternated over rounds;
the figure reported for each measure is the median over rounds of the per-round ratio
Meta / tijeras (above 1: tijeras is faster or smaller).

    python bench/video_bench.py [--rounds 1] [--objects 1 3] [--frames 40] [--no-bf16]
    python bench/video_bench.py --memory [--lengths 200 2000]

Clip mode: the 40 bedroom frames (960 x 540) of the development data; a click per object on
frame 0 (1 or 3 objects); SAM 2.1 Hiera-T with random, perturbed weights (speed does not
depend on the values) saved as Meta's files are. Measures: time to the first mask
(``init_state`` + the first click), propagation frames per second, peak memory of the process.
Variants: Meta float32, tijeras float32, tijeras bfloat16.

Memory mode: tijeras alone on synthetic videos of each length (frames generated one at a
time), with a reduced model; the streaming API, the offline predictor with
``keep_all_memories=False``, and, for contrast, with ``keep_all_memories=True``.
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
DEFAULT_CLIP = HERE.parents[1] / "shared" / "data" / "sam2_bedroom_clip" / "frames"
MEASURES = [
    ("fps", "propagation (frames/s)", True),
    ("frame_s_last10", "s per frame, full memory", False),
    ("cpu_s_per_frame", "CPU s per frame", False),
    ("first_mask_s", "time to first mask (s)", False),
    ("peak_rss_mb", "peak memory (MB)", False),
]


def make_checkpoint(config: str, path: Path) -> None:
    """Meta's model with seeded random weights, objects made present (Meta's file layout)."""
    import torch
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    GlobalHydra.instance().clear()
    initialize_config_module("sam2", version_base="1.2")
    folder = "sam2.1" if config.startswith("sam2.1") else "sam2"
    cfg = compose(config_name=f"configs/{folder}/{config}.yaml")
    OmegaConf.resolve(cfg)
    torch.manual_seed(0)
    model = instantiate(cfg.model, _recursive_=True)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
        model.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.add_(5.0)
    torch.save({"model": model.state_dict()}, path)


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIJERAS_", "MALLOC_"))}
    env.pop("LD_PRELOAD", None)
    src = str(HERE.parent / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def worker(*args: str) -> dict:
    cmd = [sys.executable, str(HERE / "_video_worker.py"), *args]
    out = subprocess.run(cmd, env=clean_env(), check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def clip_bench(args: argparse.Namespace) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="tijeras-video-bench-"))
    checkpoint = tmp / f"{args.config}_random.pt"
    make_checkpoint(args.config, checkpoint)
    variants = [("meta", "meta", "float32"), ("tijeras", "tijeras", "float32")]
    if not args.no_bf16:
        variants.append(("tijeras-bf16", "tijeras", "bfloat16"))
    report = {}
    for objects in args.objects:
        results: dict[str, list[dict]] = {name: [] for name, _, _ in variants}
        for r in range(args.rounds):
            for name, impl, dtype in variants if r % 2 == 0 else variants[::-1]:
                cmd = ["clip", "--impl", impl, "--dtype", dtype, "--checkpoint", str(checkpoint)]
                cmd += ["--clip", str(args.clip), "--config", args.config]
                cmd += ["--objects", str(objects), "--frames", str(args.frames)]
                res = worker(*cmd, "--threads", str(args.threads))
                results[name].append(res)
                shown = ", ".join(f"{k}={res[k]:.4g}" for k, _, _ in MEASURES)
                print(f"{objects} object(s) round {r + 1} {name:>13}: {shown}", flush=True)
        report[f"{objects}_objects"] = summarise(objects, results)
    return report


def summarise(objects: int, results: dict[str, list[dict]]) -> dict:
    names = list(results)
    print(f"\n{objects} object(s), {args_frames(results)} frames")
    print(f"{'measure':<28}" + "".join(f"{n:>14}" for n in names) + "   ratio (Meta / variant)")
    summary = {}
    for key, label, higher_is_better in MEASURES:
        med = {n: statistics.median(r[key] for r in rs) for n, rs in results.items()}
        ratios = {}
        for n in names:
            if n == "meta":
                continue
            pairs = zip(results["meta"], results[n])
            if higher_is_better:
                ratios[n] = statistics.median(v[key] / m[key] for m, v in pairs)
            else:
                ratios[n] = statistics.median(m[key] / v[key] for m, v in pairs)
        row = f"{label:<28}" + "".join(f"{med[n]:>14.4g}" for n in names)
        print(row + "   " + ", ".join(f"{n} {v:.2f}x" for n, v in ratios.items()))
        summary[key] = {"medians": med, "ratios": ratios}
    return summary


def args_frames(results: dict[str, list[dict]]) -> int:
    return next(iter(results.values()))[0]["frames"]


def memory_bench(args: argparse.Namespace) -> dict:
    report = {}
    runs = [("stream", False), ("offline", False), ("offline", True)]
    for api, keep_all in runs:
        row = {}
        for n in args.lengths:
            cmd = ["long", "--frames", str(n), "--api", api] + (["--keep-all"] if keep_all else [])
            res = worker(*cmd)
            row[n] = res
            print(
                f"{api:>8} keep_all={keep_all!s:<5} {n:>5} frames: peak {res['peak_rss_mb']:.0f} MB"
                f" in {res['seconds']:.0f} s",
                flush=True,
            )
        name = f"{api}{'-keep-all' if keep_all else ''}"
        lo, hi = min(args.lengths), max(args.lengths)
        growth = row[hi]["peak_rss_mb"] / row[lo]["peak_rss_mb"] - 1
        print(f"{name}: peak at {hi} frames is {100 * growth:+.1f}% of the peak at {lo}")
        report[name] = {"runs": row, "growth": growth}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--config", default="sam2.1_hiera_t")
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    parser.add_argument("--no-bf16", action="store_true")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per process")
    parser.add_argument("--memory", action="store_true", help="the memory-vs-length runs")
    parser.add_argument("--lengths", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    report = memory_bench(args) if args.memory else clip_bench(args)
    cpu = platform.processor() or platform.machine()
    print(
        f"\nmachine: {cpu}, {os.cpu_count()} cpus, torch threads {args.threads}; "
        f"rounds: {args.rounds}"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
