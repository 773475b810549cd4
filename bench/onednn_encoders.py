"""float32 image encoders with their products on MKL (``F.linear``, fused attention) and on
oneDNN (tijeras' default on the CPU), alternated in one process, and the matrix-product rates.

    python bench/onednn_encoders.py [--models vit_b,vit_t,hiera_t] [--rounds 2]

Random, perturbed weights at the official sizes; one 1024 x 1024 input. Prints each call's
time and the largest difference between the two paths relative to the output's magnitude.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from tijeras.models.blocks import linear as linear_module


def encoder(name: str) -> torch.nn.Module:
    if name == "hiera_t":
        from tijeras.models.sam2.config import SAM2_1_HIERA_TINY
        from tijeras.models.sam2.model import Sam2Model

        model = Sam2Model(SAM2_1_HIERA_TINY)
    else:
        from tijeras.models.sam.config import MOBILE_SAM, SAM_VIT_B
        from tijeras.models.sam.model import Sam

        model = Sam(SAM_VIT_B if name == "vit_b" else MOBILE_SAM)
    enc = model.eval().image_encoder
    with torch.no_grad():
        for p in enc.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return enc


def last_map(out) -> torch.Tensor:
    if torch.is_tensor(out):
        return out
    return out["vision_features"] if isinstance(out, dict) else out[-1]


def rate(fn, flops: float, repeat: int = 10) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return flops / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="vit_b,vit_t,hiera_t")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    m, k, n = 4096, 768, 3072
    a, w = torch.randn(m, k), torch.randn(n, k)
    with torch.inference_mode():
        mkl = rate(lambda: F.linear(a, w), 2 * m * k * n)
        onednn = rate(lambda: linear_module.linear(a, w), 2 * m * k * n)
    print(f"float32 ({m} x {k}) x ({k} x {n}): MKL {mkl:.0f} GFLOP/s, oneDNN {onednn:.0f} GFLOP/s")
    x = torch.randn(1, 3, 1024, 1024)
    for name in args.models.split(","):
        enc = encoder(name)
        outs = {}
        with torch.inference_mode():
            for _ in range(args.rounds):
                for on in (False, True):
                    linear_module.ONEDNN["enabled"] = on
                    start = time.perf_counter()
                    outs[on] = last_map(enc(x))
                    took = time.perf_counter() - start
                    print(f"{name:8s} {'oneDNN' if on else 'MKL':6s} {took:.2f} s")
        linear_module.ONEDNN["enabled"] = True
        ref = outs[False]
        rel = float((outs[True] - ref).abs().max() / ref.abs().max())
        print(f"{name:8s} largest difference / magnitude: {rel:.2e}")


if __name__ == "__main__":
    main()
