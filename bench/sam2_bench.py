"""SAM 2.1: tijeras against Meta's sam2 on the same weights and photo.

Each side runs in its own fresh process (``bench/_sam2_worker.py``), alternated over several
rounds; the figure reported for each measure is the median over rounds of the per-round ratio
Meta / tijeras (above 1: tijeras is faster).

    python bench/sam2_bench.py [--models tiny small] [--rounds 3] [--skip-everything]

The weights are Meta's model with random, perturbed parameters (speed does not depend on the
values), saved as Meta's files are (under ``model``). Variants: Meta float32, tijeras float32,
tijeras bfloat16.
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
CONFIGS = {"tiny": "sam2.1_hiera_t", "small": "sam2.1_hiera_s"}
MEASURES = [
    ("set_image_s", "set_image (s)"),
    ("predict_point_ms", "predict, one point (ms)"),
    ("predict_box_ms", "predict, box (ms)"),
    ("everything_s", "everything, 32x32 points (s)"),
    ("peak_rss_mb", "peak memory (MB)"),
]
VARIANTS = [
    {"name": "meta", "impl": "meta", "dtype": "float32"},
    {"name": "tijeras", "impl": "tijeras", "dtype": "float32"},
    {"name": "tijeras-bf16", "impl": "tijeras", "dtype": "bfloat16"},
]


def make_checkpoint(config: str, path: Path) -> None:
    import torch
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    GlobalHydra.instance().clear()
    initialize_config_module("sam2", version_base="1.2")
    cfg = compose(config_name=f"configs/sam2.1/{config}.yaml")
    OmegaConf.resolve(cfg)
    torch.manual_seed(0)
    model = instantiate(cfg.model, _recursive_=True)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    torch.save({"model": model.state_dict()}, path)


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIJERAS_", "MALLOC_"))}
    env.pop("LD_PRELOAD", None)
    src = str(HERE.parent / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_worker(variant: dict, config: str, checkpoint: Path, image: Path, skip: bool) -> dict:
    cmd = [sys.executable, str(HERE / "_sam2_worker.py"), "--impl", variant["impl"]]
    cmd += ["--config", config, "--checkpoint", str(checkpoint), "--image", str(image)]
    cmd += ["--dtype", variant["dtype"]] + (["--skip-everything"] if skip else [])
    out = subprocess.run(cmd, env=clean_env(), check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarise(model: str, results: dict[str, list[dict]]) -> dict:
    print(f"\nSAM 2.1 Hiera-{model}")
    names = list(results)
    print(f"{'measure':<32}" + "".join(f"{n:>14}" for n in names) + "   meta / variant")
    summary = {}
    for key, label in MEASURES:
        if key not in results["meta"][0]:
            continue
        med = {n: statistics.median(r[key] for r in rs) for n, rs in results.items()}
        ratios = {
            n: statistics.median(m[key] / r[key] for m, r in zip(results["meta"], results[n]))
            for n in names
            if n != "meta"
        }
        row = f"{label:<32}" + "".join(f"{med[n]:>14.4g}" for n in names)
        print(row + "   " + ", ".join(f"{n} {v:.2f}x" for n, v in ratios.items()))
        summary[key] = {"medians": med, "ratios": ratios}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tiny", "small"], choices=list(CONFIGS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--skip-everything", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tijeras-sam2-bench-"))
    report = {}
    for model in args.models:
        config = CONFIGS[model]
        checkpoint = tmp / f"{config}_random.pt"
        make_checkpoint(config, checkpoint)
        results: dict[str, list[dict]] = {v["name"]: [] for v in VARIANTS}
        for r in range(args.rounds):
            for v in VARIANTS if r % 2 == 0 else VARIANTS[::-1]:
                res = run_worker(v, config, checkpoint, args.image, args.skip_everything)
                results[v["name"]].append(res)
                shown = ", ".join(f"{k}={res[k]:.4g}" for k, _ in MEASURES if k in res)
                print(f"{model} round {r + 1} {v['name']:>13}: {shown}", flush=True)
        report[model] = summarise(model, results)
    print(
        f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus; "
        f"rounds: {args.rounds}; image: {args.image.name} at 1500x1000"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
