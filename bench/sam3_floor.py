"""The floor of a SAM 3 text prompt: its counted FLOPs over the machine's float32 and bfloat16
matrix-product rates, against the times of tijeras and transformers.

One prompt on an encoded image runs the text encoder, the fusion encoder (6 layers over the
72 x 72 = 5184 image tokens: self-attention, cross-attention to the phrase, a 2048-wide MLP),
the DETR decoder (200 queries) and the mask head. This counts the matrix products, attention
products and convolutions of one prompt with ``torch.utils.flop_counter`` on both
implementations (per top-level part), measures the rate of a (5184 x 256) @ (256 x 2048)
product (the fusion encoder's MLP; MKL's ``F.linear`` and oneDNN's, the faster is the float32
rate) and of the fused attention kernel at the fusion encoder's shape, and times one prompt on each side (same weights, same process, alternated; the
comparison in fresh processes is ``bench/sam3_bench.py``).

    python bench/sam3_floor.py [--threads 2] [--repeat 3] [--size reduced]

The floor is the smaller FLOP count over the matrix-product rate: no implementation that does
this arithmetic in float32 can take less time on this machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _flops import counter
from sam3_bench import PHRASES, make_weights

TOKENS, WIDTH, HIDDEN, HEADS = 5184, 256, 2048, 8


def rate(fn, flops: float, seconds: float = 2.0) -> float:
    """GFLOP/s of ``fn`` (best of repeated calls for about ``seconds``)."""
    fn()
    best, spent = float("inf"), 0.0
    while spent < seconds:
        start = time.perf_counter()
        fn()
        took = time.perf_counter() - start
        best, spent = min(best, took), spent + took
    return flops / best / 1e9


def rates() -> dict[str, float]:
    import torch
    import torch.nn.functional as F

    from tijeras.models.blocks.linear import measure_rate

    out = {"matmul_float32_onednn": measure_rate((TOKENS, WIDTH, HIDDEN), 2.0) or 0.0}
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        a = torch.randn(TOKENS, WIDTH, dtype=dtype)
        w = torch.randn(HIDDEN, WIDTH, dtype=dtype)
        out[f"matmul_{name}"] = rate(lambda a=a, w=w: F.linear(a, w), 2 * TOKENS * WIDTH * HIDDEN)
        q = torch.randn(1, HEADS, TOKENS, WIDTH // HEADS, dtype=dtype)
        out[f"attention_{name}"] = rate(
            lambda q=q: F.scaled_dot_product_attention(q, q, q), 4 * TOKENS * TOKENS * WIDTH
        )
    return out


def by_part(mode, depth: int = 1) -> dict[str, int]:
    """FLOPs per module at ``depth`` below the model (names as each implementation has them)."""
    parts = {}
    for name, ops in mode.get_flop_counts().items():
        if name == "Global" or name.count(".") != depth:
            continue
        parts[name.split(".", 1)[1]] = int(sum(ops.values()))
    return parts


def count(prompt) -> tuple[int, dict[str, int]]:
    import torch

    from tijeras.models.blocks import linear

    # oneDNN's products are invisible to the counter: count through F.linear
    linear.ONEDNN["enabled"] = False
    mode = counter()
    try:
        with torch.inference_mode(), mode:
            prompt(PHRASES[0])
    finally:
        linear.ONEDNN["enabled"] = True
    return int(mode.get_total_flops()), by_part(mode)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size", choices=["reduced", "full"], default="reduced")
    parser.add_argument(
        "--image",
        default=str(HERE.parent.parent / "shared/data/sam_demo_images/images/groceries.jpg"),
    )
    args = parser.parse_args()

    import numpy as np
    import torch
    from _sam3_worker import tijeras_side, transformers_side
    from PIL import Image

    torch.set_num_threads(args.threads)
    image = np.array(Image.open(args.image).convert("RGB"))
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / f"{args.size}.safetensors"
        make_weights(args.size, weights)
        sides = {}
        for impl, build in (("transformers", transformers_side), ("tijeras", tijeras_side)):
            ns = SimpleNamespace(weights=str(weights), size=args.size, dtype="float32")
            encode, prompt, _, _ = build(ns, image)
            encode()
            sides[impl] = prompt

    flops, parts = {}, {}
    for impl, prompt in sides.items():
        prompt(PHRASES[0])  # the per-image work of a first prompt, done once
        flops[impl], parts[impl] = count(prompt)
    times = {impl: [] for impl in sides}
    for _ in range(args.repeat):
        for impl, prompt in sides.items():
            start = time.perf_counter()
            prompt(PHRASES[1])
            times[impl].append(time.perf_counter() - start)
    measured = rates()
    model_flops = min(flops.values())
    fp32_rate = max(measured["matmul_float32"], measured["matmul_float32_onednn"])
    floor = model_flops / (fp32_rate * 1e9)
    result = {
        "torch": torch.__version__,
        "threads": args.threads,
        "size": args.size,
        "flops": flops,
        "flops_by_part": parts,
        "rates_gflops": {k: round(v, 1) for k, v in measured.items()},
        "floor_s": round(floor, 3),
        "seconds": {k: round(statistics.median(v), 3) for k, v in times.items()},
    }
    print(json.dumps(result))
    tj, tf = result["seconds"]["tijeras"], result["seconds"]["transformers"]
    print(
        f"one text prompt: {model_flops / 1e9:.1f} GFLOP (transformers "
        f"{flops['transformers'] / 1e9:.1f}, tijeras {flops['tijeras'] / 1e9:.1f})"
    )
    for impl in sides:
        print(
            f"  {impl:12s} by part: "
            + ", ".join(
                f"{k} {v / 1e9:.1f}"
                for k, v in sorted(parts[impl].items(), key=lambda kv: -kv[1])
                if v
            )
        )
    print("rates (GFLOP/s): " + ", ".join(f"{k} {v:.0f}" for k, v in measured.items()))
    print(
        f"float32 floor {floor:.3f} s; tijeras {tj:.3f} s ({floor / tj:.0%} of floor), "
        f"transformers {tf:.3f} s; ratio {tf / tj:.2f}x; a 2x target needs {tf / 2:.3f} s "
        f"= {floor / (tf / 2):.0%} of the floor"
    )


if __name__ == "__main__":
    main()
