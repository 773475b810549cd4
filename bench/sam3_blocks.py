"""SAM 3's image encoder piece by piece: transformers against tijeras, and the CPU's rates.

    python bench/sam3_blocks.py [--threads 1] [--clock cpu|wall] [--repeat 3]

Times (the minimum over ``--repeat`` calls after a warm-up; ``--clock cpu`` is the process CPU
time, which with one thread is the work done even while other jobs share the machine) of:

- one float32 matrix product of the ViT's MLP shape (5184 x 1024 x 4736) through MKL
  (``F.linear``, what transformers runs) and through oneDNN (``tijeras.models.blocks.linear``),
  and attention over a 24 x 24 window (16 heads), the 72 x 72 grid (16 heads) and the fusion
  encoder's 5184 tokens (8 heads of 32) through ``F.scaled_dot_product_attention`` and
  ``tijeras.models.blocks.attention``: the rates (GFLOP/s) the blocks' times are compared with;
- a windowed and a global ViT block (``Sam3ViTLayer`` with SDPA against tijeras' ``Block``, the
  same random weights, 1 x 72 x 72 x 1024 input), with each block's floor: its products at
  oneDNN's measured rate and its attention at the faster measured attention rate;
- the detector's feature pyramid (transformers' neck, 4 levels, against tijeras', the 3 levels
  the detector uses).

Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

BLOCK_GFLOP = {  # matrix products and attention of one block at 1008 px (72 x 72 tokens)
    "window": (2 * 5184 * 1024 * (3 * 1024 + 1024 + 2 * 4736) / 1e9, 4 * 144 * 576**2 * 64 / 1e9),
    "global": (2 * 5184 * 1024 * (3 * 1024 + 1024 + 2 * 4736) / 1e9, 4 * 16 * 5184**2 * 64 / 1e9),
}


def timer(clock: str, repeat: int):
    import torch  # noqa: F401

    now = time.process_time if clock == "cpu" else time.perf_counter

    def timed(fn) -> float:
        fn()
        best = float("inf")
        for _ in range(repeat):
            start = now()
            fn()
            best = min(best, now() - start)
        return best

    return timed


def rates(timed) -> dict:
    import torch
    import torch.nn.functional as F

    from tijeras.models.blocks.attention import attention
    from tijeras.models.blocks.linear import linear

    out = {}
    gen = torch.Generator().manual_seed(0)
    x, w = torch.randn(5184, 1024, generator=gen), torch.randn(4736, 1024, generator=gen)
    b = torch.randn(4736, generator=gen)
    flops = 2 * 5184 * 1024 * 4736 / 1e9
    with torch.inference_mode():
        out["gemm_gflops_mkl"] = flops / timed(lambda: F.linear(x, w, b))
        out["gemm_gflops_onednn"] = flops / timed(lambda: linear(x, w, b))
        for name, shape in {
            "window": (9, 16, 576, 64),
            "global": (1, 16, 5184, 64),
            "fusion": (1, 8, 5184, 32),
        }.items():
            q, k, v = (torch.randn(*shape, generator=gen) for _ in range(3))
            flops = 4 * shape[0] * shape[1] * shape[2] ** 2 * shape[3] / 1e9
            out[f"attention_{name}_gflops_sdpa"] = flops / timed(
                lambda q=q, k=k, v=v: F.scaled_dot_product_attention(q, k, v)
            )
            out[f"attention_{name}_gflops_onednn"] = flops / timed(
                lambda q=q, k=k, v=v: attention(q, k, v)
            )
    return out


def vit_blocks(timed, measured: dict) -> dict:
    import torch
    from sam3_bench import config_for, hf_configs
    from transformers.models.sam3.modeling_sam3 import Sam3ViTLayer

    from tijeras.models.sam3.vit import Block

    hf = hf_configs("reduced")[0].vision_config.backbone_config
    hf._attn_implementation = "sdpa"
    ours_config = config_for("reduced").vit
    torch.manual_seed(0)
    x = torch.randn(1, 72, 72, 1024)
    out = {}
    for name, window in (("window", 24), ("global", 0)):
        ref = Sam3ViTLayer(hf, window_size=window).eval()
        ours = Block(ours_config, window).eval()
        sd = ref.state_dict()
        ours.load_state_dict(
            {
                "norm1.weight": sd["layer_norm1.weight"],
                "norm1.bias": sd["layer_norm1.bias"],
                "norm2.weight": sd["layer_norm2.weight"],
                "norm2.bias": sd["layer_norm2.bias"],
                "attn.qkv.weight": torch.cat([sd[f"attention.{p}_proj.weight"] for p in "qkv"]),
                "attn.qkv.bias": torch.cat([sd[f"attention.{p}_proj.bias"] for p in "qkv"]),
                "attn.proj.weight": sd["attention.o_proj.weight"],
                "attn.proj.bias": sd["attention.o_proj.bias"],
                **{
                    f"mlp.{k}": sd[f"mlp.{k}"]
                    for k in ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")
                },
            }
        )
        with torch.inference_mode():
            a, b = ref(x.clone()), ours(x.clone())
            out[f"{name}_rel_error"] = float((a - b).abs().max() / a.abs().max())
            out[f"{name}_transformers_s"] = timed(lambda ref=ref: ref(x.clone()))
            out[f"{name}_tijeras_s"] = timed(lambda ours=ours: ours(x.clone()))
        gemm, attn = BLOCK_GFLOP[name]
        best_attention = max(
            measured[f"attention_{name}_gflops_sdpa"], measured[f"attention_{name}_gflops_onednn"]
        )
        out[f"{name}_floor_s"] = gemm / measured["gemm_gflops_onednn"] + attn / best_attention
        out[f"{name}_ratio"] = out[f"{name}_transformers_s"] / out[f"{name}_tijeras_s"]
    return out


def necks(timed) -> dict:
    import torch
    from sam3_bench import hf_configs
    from transformers.models.sam3.modeling_sam3 import Sam3VisionNeck

    from tijeras.models.sam3.neck import Pyramid

    config = hf_configs("reduced")[0].vision_config
    torch.manual_seed(0)
    ref = Sam3VisionNeck(config).eval()
    ours = Pyramid(1024, 256, (4.0, 2.0, 1.0, 0.5)).eval()
    names = {"scale_layers.0": "dconv_2x2_0", "scale_layers.2": "dconv_2x2_1"}
    state = {}
    for key, value in ref.state_dict().items():
        level, rest = key.removeprefix("fpn_layers.").split(".", 1)
        if level == "1":
            rest = rest.replace("scale_layers.0", "dconv_2x2")
        for old, new in {**names, "proj1": "conv_1x1", "proj2": "conv_3x3"}.items():
            rest = rest.replace(old, new)
        state[f"{level}.{rest}"] = value
    ours.load_state_dict(state)
    grid = torch.randn(1, 72, 72, 1024)
    nchw = grid.permute(0, 3, 1, 2)
    with torch.inference_mode():
        a, b = ref(nchw.contiguous())[0], ours(nchw, 3)
        error = max(float((x - y).abs().max() / x.abs().max()) for x, y in zip(a, b))
        t_ref = timed(lambda: ref(nchw.contiguous()))
        t_ours = timed(lambda: ours(nchw, 3))
    return {
        "neck_rel_error": error,
        "neck_transformers_s": t_ref,
        "neck_tijeras_s": t_ours,
        "neck_ratio": t_ref / t_ours,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import platform

    import torch

    torch.set_num_threads(args.threads)
    timed = timer(args.clock, args.repeat)
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    report = {"cpu": cpu, "threads": args.threads, "clock": args.clock, "torch": torch.__version__}
    report["rates"] = rates(timed)
    report["vit_blocks"] = vit_blocks(timed, report["rates"])
    report["neck"] = necks(timed)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
