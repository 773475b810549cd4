"""Labelling at scale: throughput of a Ray run against plain ``tijeras everything``, and the
driver's memory against the dataset size.

    python bench/scale_bench.py throughput [--model mobile-sam] [--images 50] [--workers 1 2]
                                           [--device cuda] [--options '{"points_per_side": 32}']
    python bench/scale_bench.py memory [--entries 1000 10000 100000] [--workers 2]

``throughput`` labels the same photos (from ../shared/data) with ``tijeras everything`` (one
process, COCO JSON only) and with ``--ray local`` runs of 1 and 2 workers, each run in a fresh
process tree. The model has random weights of the real architecture (saved as a checkpoint, so
the real loading path runs; the compute per image is that of the real model, though random
weights keep fewer masks than trained ones). Reported per run: wall time, images/s over the
whole run and in steady state (between the first and the last image done, from the index),
CPU seconds per image (every process of the run: driver, Ray and workers, sampled from /proc
twice a second), the driver's peak memory.

``memory`` labels a list of N entries (hard links to a few copies of one small PNG) with a stub labeller (one
fixed mask, no model) and reports the driver's peak memory for each N: it stays flat because
the driver holds only counts, the current progress and at most 2000 index rows.

Runs write under a temporary folder, removed at the end. Each line of output is also printed as
JSON at the end for the record.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = REPO.parent / "shared" / "data"
STUB = "scale_bench:stub_labeller"


def environment() -> dict[str, str]:
    """The runs' environment: this checkout's package and this folder on the path (workers
    import the stub labeller from here), a Ray token of the run's own (nothing in ~/.ray)."""
    # as users run it: torch picks its threads (Ray sets each worker's to its CPUs)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TIJERAS_") and k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
    }
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(HERE), env.get("PYTHONPATH", "")])
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    return env


def photos(count: int, folder: Path) -> Path:
    """``count`` photos of the development data, copied flat into ``folder``."""
    found = sorted((DATA / "coco_mval_subset" / "images").glob("*"))
    found += sorted((DATA / "sam_demo_images" / "images").glob("*"))
    found += sorted((DATA / "sam2_bedroom_clip" / "frames").glob("*"))
    if len(found) < count:
        raise SystemExit(f"only {len(found)} photos under {DATA}, asked for {count}")
    folder.mkdir(parents=True)
    for index, path in enumerate(found[:count]):
        shutil.copy(path, folder / f"{index:03d}_{path.name}")
    return folder


def random_checkpoint(model: str, path: Path) -> Path:
    import torch

    from tijeras.catalog import build_model

    torch.manual_seed(0)
    torch.save(build_model(model).state_dict(), path)
    return path


def measured(
    cmd: list[str], env: dict[str, str]
) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run a process tree; (its result, wall seconds, CPU seconds of it and its descendants)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])}... failed:\n{done.stderr[-4000:]}")
    return done, wall, cpu


# ----------------------------------------------------------------------------- one run


def drive(arguments: dict) -> None:
    """In a fresh process: one ``label_dataset`` run on a local Ray instance; prints JSON."""
    import threading

    from tijeras.scale import Cluster, label_dataset, read_index

    peak = [0]
    cpu: dict[int, float] = {}

    def sample() -> None:  # twice a second: the driver's memory, every process's CPU time
        while True:
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        peak[0] = max(peak[0], int(line.split()[1]))
            for pid, seconds in _tree_cpu(os.getpid()).items():
                cpu[pid] = max(cpu.get(pid, 0.0), seconds)
            time.sleep(0.5)

    threading.Thread(target=sample, daemon=True).start()
    start = time.perf_counter()
    summary = label_dataset(
        arguments["source"],
        arguments["out"],
        model=arguments["model"],
        checkpoint=arguments.get("checkpoint"),
        options=arguments.get("options") or None,
        labeller=arguments.get("labeller") or "tijeras.scale.labelling:everything_labeller",
        device=arguments.get("device", "cpu"),
        cluster=Cluster(
            "local",
            arguments["workers"],
            arguments.get("gpus_per_worker", 0.0),
            arguments["cpus_per_worker"],
            images_per_call=arguments.get("images_per_call", 1),
            shard_size=arguments.get("shard_size", 20_000),
        ),
        progress=False,
    )
    wall = time.perf_counter() - start
    index = read_index(arguments["out"]).to_pylist()
    finished = sorted(r["finished_at"] for r in index if r["status"] == "done")
    steady = (len(finished) - 1) / (finished[-1] - finished[0]) if len(finished) > 2 else None
    print(
        json.dumps(
            {
                "wall": wall,
                "done": summary.done,
                "failed": summary.failed,
                "masks": summary.masks,
                "steady_images_per_s": steady,
                "driver_peak_rss_mb": peak[0] / 1024,
                "driver_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "tree_cpu_seconds": sum(cpu.values()),
            }
        )
    )


def _tree_cpu(root: int) -> dict[int, float]:
    """CPU seconds (user + system) of ``root`` and every process below it, by pid. Ray's worker
    processes are not waited for by their parents, so ``RUSAGE_CHILDREN`` misses them."""
    parents: dict[int, int] = {}
    seconds: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        seconds[pid] = (int(fields[11]) + int(fields[12])) / tick
    mine = {root}
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in mine and pid not in mine:
                mine.add(pid)
                grew = True
    return {pid: seconds[pid] for pid in mine if pid in seconds}


def ray_run(env: dict[str, str], **arguments: object) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "_drive", json.dumps(arguments)]
    done, wall, _ = measured(cmd, env)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {**result, "process_wall": wall, "cpu_seconds": result["tree_cpu_seconds"]}


def stub_labeller(job: object):
    """One fixed mask per image, no model: the pipeline's own costs."""
    import numpy as np

    from tijeras.io import coco_rle

    def label(rgb: np.ndarray) -> list[dict]:
        mask = np.zeros(rgb.shape[:2], dtype=bool)
        mask[: rgb.shape[0] // 2, : rgb.shape[1] // 2] = True
        (rle,) = coco_rle(mask[None])
        return [
            {
                "segmentation": rle,
                "area": int(mask.sum()),
                "bbox": [0, 0, 1, 1],
                "predicted_iou": 1.0,
                "stability_score": 1.0,
                "point_coords": [[0, 0]],
                "crop_box": [0, 0, rgb.shape[1], rgb.shape[0]],
            }
        ]

    return label


# ----------------------------------------------------------------------------- measures


def throughput(args: argparse.Namespace, temp: Path, env: dict[str, str]) -> list[dict]:
    source = photos(args.images, temp / "photos")
    checkpoint = random_checkpoint(args.model, temp / f"{args.model}-random.pth")
    options = json.loads(args.options)
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
    rows = []
    cmd = [
        sys.executable,
        "-m",
        "tijeras",
        "everything",
        str(source),
        "--out",
        str(temp / "plain"),
        "--model",
        args.model,
        "--checkpoint",
        str(checkpoint),
        "--formats",
        "coco",
        "--device",
        args.device,
        *flags,
    ]
    _, wall, cpu = measured(cmd, env)
    rows.append(
        {
            "run": "tijeras everything (1 process)",
            "images": args.images,
            "wall": wall,
            "images_per_s": args.images / wall,
            "cpu_s_per_image": cpu / args.images,
        }
    )
    print(rows[-1], flush=True)
    for workers in args.workers:
        cpus = max(1, (os.cpu_count() or 1) // workers)
        gpus = 1.0 if args.device.startswith("cuda") else 0.0
        result = ray_run(
            env,
            source=str(source),
            out=str(temp / f"ray{workers}"),
            model=args.model,
            checkpoint=str(checkpoint),
            options=options,
            workers=workers,
            cpus_per_worker=cpus,
            device=args.device,
            gpus_per_worker=gpus,
            images_per_call=args.images_per_call,
            shard_size=args.shard_size,
        )
        rows.append(
            {
                "run": f"--ray local --workers {workers} --cpus-per-worker {cpus}"
                + (f" --gpus-per-worker {gpus:g}" if gpus else ""),
                "images": args.images,
                "wall": result["process_wall"],
                "images_per_s": args.images / result["process_wall"],
                "steady_images_per_s": result["steady_images_per_s"],
                "cpu_s_per_image": result["cpu_seconds"] / args.images,
                "driver_peak_rss_mb": result["driver_peak_rss_mb"],
                "masks": result["masks"],
                "failed": result["failed"],
            }
        )
        print(rows[-1], flush=True)
    return rows


def memory(args: argparse.Namespace, temp: Path, env: dict[str, str]) -> list[dict]:
    import numpy as np
    from PIL import Image

    one = temp / "one.png"
    Image.fromarray(np.full((32, 48, 3), 120, np.uint8)).save(one)
    rows = []
    for count in args.entries:
        folder = temp / f"links{count}"
        folder.mkdir()
        listing = temp / f"list{count}.txt"
        with listing.open("w") as stream:
            for index in range(count):
                name = folder / f"{index:07d}.png"
                if index % 60_000 == 0:  # a file takes at most 65,000 links on ext4
                    target = temp / f"one_{index}.png"
                    shutil.copy(one, target)
                os.link(target, name)
                stream.write(f"{name}\n")
        result = ray_run(
            env,
            source=str(listing),
            out=str(temp / f"out{count}"),
            model="test-tiny",
            labeller=STUB,
            workers=args.workers,
            cpus_per_worker=1,
            images_per_call=args.images_per_call,
            shard_size=args.shard_size,
        )
        rows.append(
            {
                "entries": count,
                "images_per_call": args.images_per_call,
                "shard_size": args.shard_size,
                "wall": result["process_wall"],
                "images_per_s": count / result["process_wall"],
                "steady_images_per_s": result["steady_images_per_s"],
                "driver_peak_rss_mb": result["driver_peak_rss_mb"],
                "cpu_s_per_image": result["cpu_seconds"] / count,
                "done": result["done"],
            }
        )
        print(rows[-1], flush=True)
        shutil.rmtree(folder)
        shutil.rmtree(temp / f"out{count}")
    return rows


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "_drive":
        drive(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="measure", required=True)
    one = sub.add_parser("throughput")
    one.add_argument("--model", default="mobile-sam")
    one.add_argument("--images", type=int, default=50)
    one.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    one.add_argument("--options", default="{}", help="everything-mode options as JSON")
    one.add_argument("--device", default="cpu", help="cpu, or cuda (one GPU per worker)")
    two = sub.add_parser("memory")
    two.add_argument("--entries", type=int, nargs="+", default=[1000, 10000, 100000])
    two.add_argument("--workers", type=int, default=2)
    for each in (one, two):
        each.add_argument("--images-per-call", type=int, default=1)
        each.add_argument("--shard-size", type=int, default=20_000)
    args = parser.parse_args()
    env = environment()
    sys.path.insert(0, str(REPO / "src"))
    with tempfile.TemporaryDirectory(prefix="scale_bench") as name:
        rows = (throughput if args.measure == "throughput" else memory)(args, Path(name), env)
    print(json.dumps({"cpu": _cpu(), "measure": args.measure, "rows": rows}))


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return f"{line.split(':', 1)[1].strip()} x {os.cpu_count()}"
    return f"unknown x {os.cpu_count()}"


if __name__ == "__main__":
    main()
