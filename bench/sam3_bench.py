"""SAM 3: tijeras against transformers' ``Sam3Model`` on the same weights and photo.

Each side runs in its own fresh process (``bench/_sam3_worker.py``), alternated over rounds; a
measure's figure is the median over rounds of the per-round ratio transformers / tijeras (above
1: tijeras is faster), of wall times and of process CPU times (with ``--threads 1`` the CPU time
is the work done even while other jobs share the machine). Measures: image encoding
(``get_vision_features`` against ``Sam3Processor.set_image``), one text prompt on the encoded
image (``Sam3Model`` on the stored vision features + ``post_process_instance_segmentation``
against ``set_text_prompt``; distinct phrases, so no phrase cache serves them; the median of
several, after a first prompt that does the per-image work), and peak RSS.

    python bench/sam3_bench.py [--rounds 3] [--full-encoder] [--threads 2]

The ``reduced`` size is SAM 3 with a 4-block ViT (full width, 1008 px) and every other part at
full size, so the prompt path is the real one; ``--full-encoder`` also times the full 32-block
encoder once per side. Weights: transformers' model with seeded, perturbed random parameters,
saved in the ``facebook/sam3`` layout (speed does not depend on the values). Variants:
transformers float32, tijeras float32, tijeras bfloat16 (its masks compared with float32).
The presence head's output bias is raised by 5, so that about half of the queries pass
Meta's 0.5 threshold and both sides make masks (with random weights the presence token would
otherwise reject every query and tijeras would skip the mask head altogether).
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
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_IMAGE = HERE.parents[1] / "shared" / "data" / "sam_demo_images" / "images" / "groceries.jpg"
PHRASES = ["tomato", "red apple", "paper bag", "bottle", "a yellow banana", "person", "carton"]
REDUCED_DEPTH, REDUCED_GLOBAL = 4, (1, 3)


def config_for(size: str):
    """tijeras' config of a benchmark size."""
    from tijeras.models.sam3.config import SAM3

    if size == "full":
        return SAM3
    vit = replace(SAM3.vit, depth=REDUCED_DEPTH, global_blocks=REDUCED_GLOBAL)
    return replace(SAM3, vit=vit)


def hf_configs(size: str):
    """transformers' detector and tracker configs of a benchmark size."""
    from transformers import Sam3Config
    from transformers.models.sam3_tracker import Sam3TrackerConfig

    vit = {"model_type": "sam3_vit_model", "layer_norm_eps": 1e-5}
    if size == "reduced":
        vit.update(num_hidden_layers=REDUCED_DEPTH, global_attn_indexes=list(REDUCED_GLOBAL))
    vision = {"backbone_config": vit}
    return Sam3Config(vision_config=vision), Sam3TrackerConfig(vision_config=vision)


def make_weights(size: str, path: Path) -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import Sam3Model

    torch.manual_seed(0)
    detector = Sam3Model(hf_configs(size)[0]).eval()
    with torch.no_grad():
        for p in detector.parameters():
            p.add_(torch.randn_like(p) * 0.02)
        # a confident presence token, so queries pass the 0.5 threshold and masks are made
        detector.detr_decoder.presence_head.layer3.bias.add_(5.0)
    save_file(
        {"detector_model." + k: v.contiguous() for k, v in detector.state_dict().items()}, str(path)
    )


def run(
    variant: dict, weights: Path, image: Path, size: str, extra: list[str], threads: int = 2
) -> dict:
    cmd = [
        sys.executable,
        str(HERE / "_sam3_worker.py"),
        "--impl",
        variant["impl"],
        "--dtype",
        variant["dtype"],
        "--weights",
        str(weights),
        "--image",
        str(image),
        "--size",
        size,
        "--threads",
        str(threads),
        *extra,
    ]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode:
        raise SystemExit(f"{variant['name']} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def agreement(reference: dict, ours: dict) -> dict:
    """Instances, score error and mean mask IoU of matched instances (by box)."""

    n = min(len(reference["scores"]), len(ours["scores"]))
    out = {"instances": [len(reference["scores"]), len(ours["scores"])]}
    if n == 0:
        return out
    ious, errs = [], []
    for i in range(len(ours["scores"])):
        j = int((reference["boxes"] - ours["boxes"][i]).abs().sum(-1).argmin())
        a, b = ours["masks"][i].bool(), reference["masks"][j].bool()
        union = (a | b).sum().item()
        ious.append(1.0 if union == 0 else (a & b).sum().item() / union)
        errs.append(abs(float(ours["scores"][i] - reference["scores"][j])))
    out.update(
        mean_mask_iou=statistics.mean(ious), min_mask_iou=min(ious), max_score_error=max(errs)
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--full-encoder", action="store_true")
    parser.add_argument(
        "--threads",
        type=int,
        default=2,
        help="threads per side (1: CPU times are robust to other jobs on the machine)",
    )
    args = parser.parse_args()
    import torch

    variants = [
        {"name": "transformers", "impl": "transformers", "dtype": "float32"},
        {"name": "tijeras", "impl": "tijeras", "dtype": "float32"},
        {"name": "tijeras-bf16", "impl": "tijeras", "dtype": "bfloat16"},
    ]
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    report: dict = {"cpu": cpu, "threads": args.threads, "image": args.image.name, "rounds": []}
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "reduced.safetensors"
        make_weights("reduced", weights)
        outputs = {v["name"]: Path(tmp) / f"{v['name']}.pt" for v in variants}
        for r in range(args.rounds):
            order = variants if r % 2 == 0 else variants[::-1]
            row = {}
            for v in order:
                extra = ["--out", str(outputs[v["name"]])] if r == 0 else []
                row[v["name"]] = run(v, weights, args.image, "reduced", extra, args.threads)
                print(v["name"], row[v["name"]], flush=True)
            report["rounds"].append(row)
        saved = {k: torch.load(p) for k, p in outputs.items()}
        report["fp32_agreement"] = agreement(saved["transformers"], saved["tijeras"])
        report["bf16_agreement"] = agreement(saved["tijeras"], saved["tijeras-bf16"])
        if args.full_encoder:
            full = Path(tmp) / "full.safetensors"
            make_weights("full", full)
            report["full_encoder_s"] = {
                v["name"]: run(v, full, args.image, "full", ["--encoder-only"], args.threads)
                for v in variants[:2]
            }
    ratios = {}
    for key in ("encode_s", "encode_cpu_s", "prompt_s", "prompt_cpu_s", "peak_rss_mb"):
        for name in ("tijeras", "tijeras-bf16"):
            per_round = [row["transformers"][key] / row[name][key] for row in report["rounds"]]
            ratios[f"{key} transformers/{name}"] = round(statistics.median(per_round), 2)
    report["median_ratios"] = ratios
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
