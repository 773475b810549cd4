"""The memory attention's floor: one full-memory cross-attention of SAM 2 tracking, timed.

At full memory an object's 4096 frame tokens attend to 28,736 memory tokens (7 frames of 4096
and the pointer tokens) in each of the 4 memory-attention layers. This times the cross-attention
core (query-key products, softmax, weighted 64-channel memories) as tijeras computes it
(``attend_in_chunks``) and as PyTorch's fused kernel would with the values padded to the key
width, checks they agree, and prints the rate reached against the products' FLOPs.

    python bench/video_attention.py [--objects 1]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from tijeras.models.sam2.memory import attend_in_chunks

QUERIES, KEYS, DIM, MEM_DIM = 4096, 28_736, 256, 64


def best_of(fn, repeat: int = 3) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1)
    args = parser.parse_args()
    torch.manual_seed(0)
    b = args.objects
    q = torch.randn(b, 1, QUERIES, DIM) / DIM**0.5
    k = torch.randn(b, 1, KEYS, DIM)
    v = torch.randn(b, 1, KEYS, MEM_DIM)
    padded = torch.cat([v, v.new_zeros(b, 1, KEYS, DIM - MEM_DIM)], dim=-1)
    ours = attend_in_chunks(q, k, v)
    fused = F.scaled_dot_product_attention(q, k, padded, scale=1.0)[..., :MEM_DIM]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; objects {b}")
    print(f"max difference tijeras vs fused: {(ours - fused).abs().max().item():.2e}")
    flops = 2 * b * QUERIES * KEYS * (DIM + MEM_DIM)
    for name, fn in (
        ("tijeras attend_in_chunks", lambda: attend_in_chunks(q, k, v)),
        (
            "fused, values padded to 256",
            lambda: F.scaled_dot_product_attention(q, k, padded, scale=1.0),
        ),
    ):
        seconds = best_of(fn)
        print(
            f"{name:30s} {seconds:.3f} s  {flops / seconds / 1e9:.0f} GFLOP/s of {flops / 1e9:.0f} GFLOP"
        )


if __name__ == "__main__":
    main()
