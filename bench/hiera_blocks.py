"""Where the SAM 2 image encoder's time goes: each Hiera block and the FPN neck, Meta against tijeras.

    python bench/hiera_blocks.py [--model tiny|small] [--runs 4]

Each side runs in its own fresh process (random weights: speed does not depend on them) and
encodes one 1024 x 1024 input ``--runs`` times after a warm-up; forward hooks time every trunk
block and the neck, and the median per block is printed side by side with the block's kind.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

CONFIGS = {"tiny": "sam2.1_hiera_t", "small": "sam2.1_hiera_s"}


def measure(impl: str, model_name: str, runs: int) -> dict:
    import torch

    torch.set_num_threads(2)
    config = CONFIGS[model_name]
    if impl == "meta":
        from sam2.build_sam import build_sam2

        model = build_sam2(f"configs/sam2.1/{config}.yaml", None, device="cpu").eval()

        def encode(x: torch.Tensor) -> None:
            model.forward_image(x)
    else:
        import tijeras  # noqa: F401  (process-level allocator settings)
        from tijeras.sam2 import build_sam2

        model = build_sam2(f"{config}.yaml", None, device="cpu").eval()

        def encode(x: torch.Tensor) -> None:
            model.encode_image(x)

    trunk, neck = model.image_encoder.trunk, model.image_encoder.neck
    times: dict[str, list[float]] = {}
    labels = []

    def hook(module: torch.nn.Module, key: str) -> None:
        started: list[float] = []

        def before(*_: object) -> None:
            started.append(time.perf_counter())

        def after(*_: object) -> None:
            times.setdefault(key, []).append(time.perf_counter() - started.pop())

        module.register_forward_pre_hook(before)
        module.register_forward_hook(after)

    for i, block in enumerate(trunk.blocks):
        window = block.window_size
        kind = "global" if window == 0 else f"window {window}"
        key = f"block {i:2d} ({kind}, {block.dim}->{block.dim_out})"
        labels.append(key)
        hook(block, key)
    labels.append("neck")
    hook(neck, "neck")
    x = torch.randn(1, 3, 1024, 1024)
    totals = []
    with torch.inference_mode():
        encode(x)
        times.clear()
        for _ in range(runs):
            start = time.perf_counter()
            encode(x)
            totals.append(time.perf_counter() - start)
    result = {key: statistics.median(times[key]) * 1000 for key in labels}
    result["whole encoder"] = statistics.median(totals) * 1000
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=list(CONFIGS), default="tiny")
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--impl", choices=["meta", "tijeras"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.impl:
        json.dump(measure(args.impl, args.model, args.runs), sys.stdout)
        return
    results = {}
    for impl in ("meta", "tijeras"):
        cmd = [sys.executable, __file__, "--impl", impl, "--model", args.model]
        cmd += ["--runs", str(args.runs)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        results[impl] = json.loads(out.strip().splitlines()[-1])
    print(f"Hiera-{args.model}, median of {args.runs} encodes (ms)")
    print(f"{'':40s} {'meta':>8s} {'tijeras':>8s} {'ratio':>6s}")
    for key, meta in results["meta"].items():
        ours = results["tijeras"][key]
        print(f"{key:40s} {meta:8.1f} {ours:8.1f} {meta / ours:6.2f}")


if __name__ == "__main__":
    main()
