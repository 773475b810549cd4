"""tijeras against the strongest alternatives, every contender in one run, with the floor.

    python bench/peers.py [--rounds 3] [--everything-rounds 1] [--device cpu|cuda] \
        [--models vit_b,vit_t,sam2.1_hiera_t] [--contenders NAME,...] [--json peers.json]

Contenders (``bench/_peer_worker.py``): Meta's code plain, under jemalloc, with
``torch.compile``, under bfloat16 autocast, compiled under autocast (on CUDA: bfloat16 weights
and ``max-autotune``, the segment-anything-fast recipe); transformers' ``SamModel`` /
``Sam2Model``; ONNX Runtime running Meta's decoder export and an encoder export, float32 and
int8 (``bench/_peer_onnx.py``); tijeras float32, bfloat16, ``auto`` (what ``--dtype auto``
picks here) and its own ONNX export, float32 and int8.

Every contender runs in its own fresh process, as users run it, and the order of the
contenders alternates between rounds; each figure is the median over rounds, and each ratio
the median over rounds of the per-round ratio. Measures: the ViT-B, MobileSAM and SAM 2.1-tiny
image encoders; with ViT-B, a one-point prompt (three candidates at the original size), 64 box
prompts, a hover answer (best mask at the original size, COCO RLE) and everything mode at
32 x 32 points; and the web app's hover round trip in a real browser (``bench/web_bench.py``).

The floor of a row is its counted FLOPs (``bench/_flops.py``) divided by the rate this machine
reaches on a large matrix product in the row's precision, measured in the same run; a row's
fraction of the floor is floor / time. Weights: each model's official architecture with
random, perturbed parameters (speed does not depend on the values); transformers' models get
their own random initialisation of the same architecture.
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
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))
from sam_bench import DEFAULT_IMAGE, JEMALLOC, clean_env

MODELS = ["vit_b", "vit_t", "sam2.1_hiera_t"]
MODEL_LABELS = {"vit_b": "SAM ViT-B", "vit_t": "MobileSAM", "sam2.1_hiera_t": "SAM 2.1 Hiera-T"}
CONTENDERS = [
    "meta",
    "meta+jemalloc",
    "meta+compile",
    "meta+bf16",
    "meta+compile+bf16",
    "transformers",
    "onnxruntime",
    "onnxruntime-int8",
    "tijeras",
    "tijeras-bf16",
    "tijeras-auto",
    "tijeras-onnx",
    "tijeras-onnx-int8",
]
# precision of each contender's encoder and decoder, for the floor
PRECISION = {
    "meta+bf16": ("bfloat16", "bfloat16"),
    "meta+compile+bf16": ("bfloat16", "bfloat16"),
    "tijeras-bf16": ("bfloat16", "bfloat16"),
    "onnxruntime-int8": ("int8", "int8"),
    "tijeras-onnx-int8": ("int8", "int8"),
}
MEASURES = {  # key in the worker's JSON, label, unit, models, flops of (encoder, decoder calls)
    "encoder_s": ("image encoder", "s", MODELS, (1, 0)),
    "point_ms": ("one-point prompt, 3 masks", "ms", ["vit_b", "vit_t"], (0, 1)),
    "batch64_ms": ("64 box prompts", "ms", ["vit_b"], (0, 64)),
    "hover_ms": ("hover answer (best mask, RLE)", "ms", ["vit_b", "vit_t"], (0, 1)),
    "everything_s": ("everything, 32x32 points", "s", ["vit_b"], (1, 1024)),
}
FP32_PEERS = ["meta", "meta+jemalloc", "meta+compile", "transformers", "onnxruntime"]
WORKER_MEASURES = {
    "vit_b": "encoder,point,batch64,hover",
    "vit_t": "encoder,point,hover",
    "sam2.1_hiera_t": "encoder",
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine(device: str) -> dict:
    """CPU model, ISA flags, torch build, threads (and the GPU) for the header."""
    import torch

    from tijeras.hub.precision import choose_precision, cpu_info

    info = cpu_info()
    out = {
        "cpu": info.model,
        "isa": info.isa,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "auto_picks": choose_precision(device).label,
    }
    try:
        import onnxruntime

        out["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    if device.startswith("cuda"):
        out["gpu"] = torch.cuda.get_device_name()
    return out


def make_checkpoints(models: list[str], tmp: Path) -> dict[str, str]:
    import mobile_sam_bench
    import sam2_bench
    import sam_bench

    paths = {}
    for model in models:
        path = tmp / f"{model}.pt"
        if model == "vit_b":
            sam_bench.make_checkpoint(path)
        elif model == "vit_t":
            mobile_sam_bench.make_checkpoint(path)
        else:
            sam2_bench.make_checkpoint(model, path)
        paths[model] = str(path)
    return paths


def run_json(cmd: list[str], env: dict[str, str], timeout: float) -> dict:
    """A fresh process; its last stdout line as JSON, or an ``error`` entry."""
    try:
        out = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = out.stdout.strip().splitlines()
    if out.returncode or not lines:
        tail = (out.stderr or "").strip().splitlines()[-3:]
        return {"error": f"exit {out.returncode}: {' | '.join(tail)[-400:]}"}
    return json.loads(lines[-1])


def env_for(contender: str) -> dict[str, str]:
    jemalloc = contender == "meta+jemalloc" and Path(JEMALLOC).exists()
    return clean_env(jemalloc)


def worker(args, contender: str, model: str, ckpts: dict, measures: str, masks: Path | None):
    cmd = [sys.executable, str(HERE / "_peer_worker.py"), "--contender", contender]
    cmd += ["--model", model, "--checkpoint", ckpts[model], "--image", str(args.image)]
    cmd += ["--measures", measures, "--device", args.device, "--threads", str(args.threads)]
    cmd += ["--repeat", str(args.repeat), "--onnx", str(args.onnx_dir)]
    if masks is not None:
        cmd += ["--save-masks", str(masks)]
    return run_json(cmd, env_for(contender), args.timeout)


def alternate(items: list[str], r: int) -> list[str]:
    return items if r % 2 == 0 else items[::-1]


def ratio(results: dict, key: str, num: str, den: str) -> float | None:
    """Median over rounds of results[num] / results[den] (above 1: ``den`` is faster)."""
    pairs = [
        (a[key], b[key])
        for a, b in zip(results.get(num, []), results.get(den, []))
        if key in a and key in b
    ]
    return statistics.median(x / y for x, y in pairs) if pairs else None


def median(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if key in r]
    return statistics.median(values) if values else None


def floor_seconds(floor: dict, model: str, key: str, contender: str, auto: str) -> float | None:
    """FLOPs of the measure over the rate of the contender's precision (None if unknown)."""
    if not floor or model not in floor.get("flops", {}):
        return None
    enc_calls, dec_calls = MEASURES[key][3]
    enc_dtype, dec_dtype = PRECISION.get(contender, ("float32", "float32"))
    if contender == "tijeras-auto":
        enc_dtype = "bfloat16" if auto.startswith("bfloat16") else "float32"
    rates = floor["rates_gflops"]
    flops = floor["flops"][model]
    seconds = 0.0
    parts = ((enc_calls, "encoder", enc_dtype), (dec_calls, "decoder", dec_dtype))
    for calls, part, dtype in parts:
        if calls:
            if not rates.get(dtype):
                return None
            seconds += calls * flops[part]["floor"] / (rates[dtype] * 1e9)
    return seconds


def table(report: dict, model: str, key: str) -> list[str]:
    """One markdown table: contenders, time, ratios, fraction of the floor, winners."""
    label, unit, _, _ = MEASURES[key]
    results = report["results"][model]
    auto = report["machine"]["auto_picks"]
    rows = []
    for contender in report["contenders"]:
        runs = results.get(contender, [])
        value = median(runs, key)
        if value is None:
            reasons = (r.get("unsupported") or r.get("error") or r.get(key + "_na") for r in runs)
            why = next((x for x in reasons if x), None)
            rows.append((contender, None, why or "n/a"))
            continue
        rows.append((contender, value, None))
    timed = [(c, v) for c, v, _ in rows if v is not None]
    if not timed:
        return []
    peers = [(c, v) for c, v in timed if not c.startswith("tijeras")]
    ours = [(c, v) for c, v in timed if c.startswith("tijeras")]
    best_peer = min(peers, key=lambda x: x[1]) if peers else None
    best_ours = min(ours, key=lambda x: x[1]) if ours else None
    winner = min(timed, key=lambda x: x[1])[0]
    scale = 1000 if unit == "ms" else 1
    lines = [
        f"#### {MODEL_LABELS[model]}: {label} ({unit})",
        "",
        "| contender | time | vs Meta | tijeras fp32 faster by | floor | of floor |",
        "|---|---|---|---|---|---|",
    ]
    for contender, value, why in rows:
        if value is None:
            lines.append(f"| {contender} | n/a ({why}) | | | | |")
            continue
        vs_meta = ratio(results, key, "meta", contender)
        ours_by = ratio(results, key, contender, "tijeras")
        floor = floor_seconds(report.get("floor"), model, key, contender, auto)
        mark = ""
        if best_peer and contender == best_peer[0]:
            mark = " (best peer)"
        if best_ours and contender == best_ours[0]:
            mark = " (best tijeras)"
        name = f"**{contender}**" if contender == winner else contender
        cells = [
            f"{name}{mark}",
            f"{value:.4g}",
            "" if vs_meta is None else f"{vs_meta:.2f}x",
            "" if ours_by is None or contender == "tijeras" else f"{ours_by:.2f}x",
            "" if floor is None else f"{floor * scale:.3g}",
            "" if floor is None else f"{100 * floor / (value / scale):.0f}%",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def overview(report: dict) -> list[str]:
    """One table for the machine: a row per measure and model, a column per contender (median
    time), the float32 floor and the winner."""
    contenders = report["contenders"]
    head = ["measure", "floor fp32", *contenders, "winner"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, (label, unit, models, _) in MEASURES.items():
        scale = 1000 if unit == "ms" else 1
        for model in models:
            results = report["results"].get(model)
            if not results:
                continue
            meds = {c: median(results.get(c, []), key) for c in contenders}
            timed = {c: v for c, v in meds.items() if v is not None}
            if not timed:
                continue
            winner = min(timed, key=timed.get)
            floor = floor_seconds(report.get("floor"), model, key, "tijeras", "")
            cells = [f"{MODEL_LABELS[model]}: {label} ({unit})"]
            cells.append("" if floor is None else f"{floor * scale:.3g}")
            for c in contenders:
                v = meds[c]
                cells.append(
                    "n/a" if v is None else (f"**{v:.4g}**" if c == winner else f"{v:.4g}")
                )
            cells.append(winner)
            lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def verdicts(report: dict) -> list[str]:
    """The targets: tijeras fp32 against every fp32 peer; fastest against fastest."""
    out = ["### Targets", ""]
    for key, (label, _, models, _) in MEASURES.items():
        for model in models:
            results = report["results"].get(model, {})
            fp32 = [(c, ratio(results, key, c, "tijeras")) for c in FP32_PEERS]
            fp32 = [(c, r) for c, r in fp32 if r is not None]
            if fp32:
                worst = min(fp32, key=lambda x: x[1])
                out.append(
                    f"- {MODEL_LABELS[model]}, {label}: tijeras fp32 against the strongest fp32 "
                    f"peer ({worst[0]}): {worst[1]:.2f}x"
                )
            meds = {c: median(results.get(c, []), key) for c in report["contenders"]}
            peers = {c: v for c, v in meds.items() if v is not None and not c.startswith("tijeras")}
            ours = {c: v for c, v in meds.items() if v is not None and c.startswith("tijeras")}
            if peers and ours:
                bp, bo = min(peers, key=peers.get), min(ours, key=ours.get)
                out.append(
                    f"  fastest: {bo} {ours[bo]:.4g} against {bp} {peers[bp]:.4g} "
                    f"({peers[bp] / ours[bo]:.2f}x)"
                )
    return out + [""]


def agreement(args, ckpts: dict) -> dict:
    """Mask IoU of tijeras bf16 / auto against float32 on every development photo."""
    cmd = [sys.executable, str(HERE / "_peer_agreement.py"), "--checkpoint", ckpts["vit_b"]]
    cmd += ["--images", str(args.image.parent), "--threads", str(args.threads)]
    cmd += ["--device", args.device]
    return run_json(cmd, clean_env(), args.timeout)


def mask_parity(tmp: Path) -> dict:
    """Round-0 masks of every contender against Meta's plain code (IoU per candidate)."""
    import numpy as np

    ref = tmp / "masks-vit_b-meta.npz"
    if not ref.is_file():
        return {}
    meta = np.load(ref)
    out = {}
    for path in sorted(tmp.glob("masks-vit_b-*.npz")):
        name = path.stem.removeprefix("masks-vit_b-")
        other = np.load(path)
        ious = []
        for kind in ("point", "box"):
            for a, b in zip(other[kind], meta[kind]):
                union = (a | b).sum()
                ious.append(float((a & b).sum() / union) if union else 1.0)
        out[name] = min(ious)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--everything-rounds", type=int, default=1)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=15, help="calls per decoder measure")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--skip-everything", action="store_true")
    parser.add_argument("--skip-web", action="store_true")
    parser.add_argument("--skip-agreement", action="store_true")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per process")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--markdown", type=Path, default=None)
    parser.add_argument("--render", type=Path, default=None, help="print a saved --json again")
    args = parser.parse_args()
    if args.render:
        print(render(json.loads(args.render.read_text())))
        return
    models = [m for m in args.models.split(",") if m]
    contenders = [c for c in args.contenders.split(",") if c]
    if args.device.startswith("cuda"):  # no jemalloc / CPU-only runtimes matter there
        contenders = [c for c in contenders if c != "meta+jemalloc"]
    started = time.time()
    tmp = Path(tempfile.mkdtemp(prefix="tijeras-peers-"))
    args.onnx_dir = tmp / "onnx"
    report: dict = {"machine": machine(args.device), "contenders": contenders, "models": models}
    report["settings"] = {k: str(v) for k, v in vars(args).items()}
    log("machine: " + json.dumps(report["machine"]))

    log("weights: random, perturbed official architectures ...")
    ckpts = make_checkpoints(models, tmp)
    if any("onnx" in c for c in contenders):
        report["onnx"] = {}
        for model in models:
            log(f"ONNX exports for {model} ...")
            cmd = [sys.executable, str(HERE / "_peer_onnx.py"), "--model", model]
            cmd += ["--checkpoint", ckpts[model], "--out", str(args.onnx_dir)]
            report["onnx"][model] = run_json(cmd, clean_env(), args.timeout)
    log("floor: FLOPs and matrix-product rates ...")
    cmd = [sys.executable, str(HERE / "_flops.py"), "--models", ",".join(models)]
    cmd += ["--checkpoints", json.dumps(ckpts), "--threads", str(args.threads)]
    cmd += ["--device", args.device]
    report["floor"] = run_json(cmd, clean_env(), args.timeout)
    log("floor: " + json.dumps(report["floor"].get("rates_gflops", report["floor"])))

    results: dict = {m: {c: [] for c in contenders} for m in models}
    report["results"] = results
    for r in range(args.rounds):
        for model in models:
            for contender in alternate(contenders, r):
                masks = None
                if r == 0 and model == "vit_b":
                    masks = tmp / f"masks-{model}-{contender}.npz"
                res = worker(args, contender, model, ckpts, WORKER_MEASURES[model], masks)
                results[model][contender].append(res)
                log(f"round {r + 1} {model} {contender}: {json.dumps(res)}")
    if not args.skip_everything and "vit_b" in models:
        for r in range(args.everything_rounds):
            for contender in alternate(contenders, r):
                res = worker(args, contender, "vit_b", ckpts, "everything", None)
                log(f"everything round {r + 1} {contender}: {json.dumps(res)}")
                runs = results["vit_b"][contender]
                if r < len(runs):
                    runs[r].update({k: v for k, v in res.items() if k.startswith("everything")})
                else:
                    runs.append(res)
    report["mask_iou_vs_meta"] = mask_parity(tmp)
    if not args.skip_agreement and "vit_b" in models:
        log("mask agreement of the bfloat16 modes on the development photos ...")
        report["agreement"] = agreement(args, ckpts)
    if not args.skip_web and not args.device.startswith("cuda"):
        log("web app hover round trip (bench/web_bench.py) ...")
        web_json = tmp / "web.json"
        cmd = [sys.executable, str(HERE / "web_bench.py"), "--moves", "300", "--clients", "4"]
        cmd += ["--seconds", "20", "--checkpoint", ckpts.get("vit_b", ""), "--json", str(web_json)]
        done = subprocess.run(cmd, env=clean_env(), capture_output=True, text=True, check=False)
        report["web"] = (
            json.loads(web_json.read_text())
            if web_json.is_file()
            else {"error": done.stderr[-400:]}
        )
    report["minutes"] = round((time.time() - started) / 60, 1)
    text = render(report)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    if args.markdown:
        args.markdown.write_text(text)


def render(report: dict) -> str:
    m = report["machine"]
    rates = report.get("floor", {}).get("rates_gflops", {})
    lines = [
        f"### {m['cpu']}" + (f" + {m['gpu']}" if "gpu" in m else ""),
        "",
        (
            f"CPU flags: {m['isa']} (PyTorch kernels: {m['torch_cpu_capability']}); {m['cores']} "
            f"cores, {report['settings']['threads']} threads; torch {m['torch']}, onnxruntime "
            f"{m.get('onnxruntime', '-')}; `--dtype auto` picks {m['auto_picks']}."
        ),
        "Matrix product (4096 x 768 x 768): "
        + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in rates.items() if v)
        + f". Rounds: {report['settings']['rounds']} (everything: "
        f"{report['settings']['everything_rounds']}); {report['minutes']} minutes.",
        "",
    ]
    lines += overview(report)
    for key, (_, _, models, _) in MEASURES.items():
        for model in models:
            if model in report["results"]:
                lines += table(report, model, key)
    web = report.get("web")
    if web and "hover_p50_ms" in web:
        lines += [
            (
                f"Web app hover round trip (tijeras, browser): p50 {web['hover_p50_ms']} ms, "
                f"p95 {web['hover_p95_ms']} ms (server {web['server_decode_p50_ms']} ms)."
            ),
            "",
        ]
    if report.get("mask_iou_vs_meta"):
        lines.append(
            "Lowest mask IoU against Meta's plain code (point and box, three candidates each): "
            + ", ".join(f"{k} {v:.4f}" for k, v in report["mask_iou_vs_meta"].items())
        )
        lines.append("")
    agree = report.get("agreement")
    if agree and "photos" in agree:
        lines.append(
            "bfloat16 against float32 on the development photos (lowest IoU over photos, "
            "prompts and candidates): "
            + ", ".join(f"{k} {v:.4f}" for k, v in agree["lowest"].items())
        )
        lines.append("")
    return "\n".join(lines + verdicts(report))


if __name__ == "__main__":
    main()
