"""The web app on localhost: hover round-trip latency in a real browser, and a load test.

    python bench/web_bench.py [--moves 500] [--clients 8] [--seconds 60] [--checkpoint PATH]
                              [--mixed]

Starts ``tijeras serve`` (SAM ViT-B; Meta's ViT-B with random, perturbed weights unless a
checkpoint is given, which changes nothing for speed) in its own process, then:

1. **hover**: chromium (Playwright) opens the page, uploads the photo and moves the mouse over
   the image ``--moves`` times; each move waits until the page has drawn the mask for that
   cursor position. The page itself records, per move, the time from sending the position
   to the mask painted on its canvas (``window.tijerasStats``); p50 / p95 are reported, with
   the server's own decode time for comparison.
2. **load**: ``--clients`` WebSocket clients hover the same image concurrently for
   ``--seconds`` (each sends a position, waits for its answer, sends the next). Reports
   answers per second, latency percentiles, errors, and the server's resident memory
   sampled every second (peak, and growth over the second half of the run). With ``--mixed``
   (the soak) every client also, once every 20 hover answers, clicks (a multimask ``segment``),
   keeps the best candidate as an object, downloads its cut-out, sticker and erased photo, and
   removes the object again; any 4xx/5xx answer counts as an error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from sam_bench import DEFAULT_IMAGE, clean_env, make_checkpoint

CHROMIUM = "/usr/bin/chromium"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def start_server(checkpoint: Path, tmp: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = clean_env()
    env["TIJERAS_CACHE"] = str(tmp / "cache")
    cmd = [sys.executable, "-m", "tijeras", "serve", "--port", str(port)]
    cmd += ["--model", "sam-vit-b", "--checkpoint", str(checkpoint)]
    log = open(tmp / "server.log", "w")  # noqa: SIM115  (lives as long as the server)
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(f"{url}/api/info", timeout=2).read()
            return process, url
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.5)
    raise SystemExit("server did not start:\n" + (tmp / "server.log").read_text())


def server_pid(process: subprocess.Popen) -> int:
    """The process that serves (the CLI may re-execute itself under jemalloc: same pid)."""
    return process.pid


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def hover_in_browser(url: str, image: Path, moves: int) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 950})
        page.goto(url)
        page.set_input_files("#file-input", str(image))
        page.wait_for_selector("#stage[data-ready='1']", timeout=300_000)
        image_id = page.get_attribute("#stage", "data-image-id")
        box = page.locator("#image").bounding_box()
        rng = random.Random(0)
        for i in range(moves + 20):  # the first 20 moves warm up
            if i == 20:
                page.evaluate(
                    "window.tijerasStats.hover = []; window.tijerasStats.hoverServer = []"
                )
            x = box["x"] + rng.uniform(0.05, 0.95) * box["width"]
            y = box["y"] + rng.uniform(0.05, 0.95) * box["height"]
            drawn = page.evaluate("window.tijerasStats.hover.length")
            page.mouse.move(x, y)
            page.wait_for_function(
                "(n) => window.tijerasStats.hover.length > n", arg=drawn, timeout=30_000
            )
        stats = page.evaluate("window.tijerasStats")
        browser.close()
    return {
        "image_id": image_id,
        "round_trip_ms": stats["hover"],
        "server_ms": stats["hoverServer"],
    }


MIXED_EVERY = 20  # hover answers between two rounds of clicks, keeps and downloads


def _request(method: str, url: str, body: dict | None = None) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if body is not None else {}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _labelling_round(url: str, image_id: str, rng: random.Random) -> list[str]:
    """What a user does with a click: candidates, keep, three downloads, remove. Errors."""
    base = f"{url}/api/images/{image_id}"
    point = [rng.uniform(0, 1799), rng.uniform(0, 1199)]
    status, body = _request("POST", f"{base}/segment", {"points": [point], "labels": [1]})
    if status != 200:
        return [f"segment {status}: {body[:200]!r}"]
    mask = json.loads(body)["masks"][0]
    errors = []
    status, body = _request("POST", f"{base}/objects", {"mask_id": mask["id"], "name": "soak"})
    if status != 201:
        return [f"keep {status}: {body[:200]!r}"]
    object_id = json.loads(body)["id"]
    if mask["area"]:
        for path in ("cutout.png", "sticker.webp?outline=8", "erase.jpg"):
            status, body = _request("GET", f"{base}/masks/{mask['id']}/{path}")
            if status != 200:
                errors.append(f"{path} {status}: {body[:200]!r}")
    status, body = _request("DELETE", f"{base}/objects/{object_id}")
    if status != 200:
        errors.append(f"remove {status}: {body[:200]!r}")
    return errors


async def _client(
    url: str, image_id: str, seconds: float, seed: int, out: dict, mixed: bool
) -> None:
    import websockets

    rng = random.Random(seed)
    ws_url = url.replace("http", "ws") + f"/api/images/{image_id}/hover"
    deadline = time.monotonic() + seconds
    seq = 0
    async with websockets.connect(ws_url, max_size=None) as ws:
        while time.monotonic() < deadline:
            seq += 1
            sent = time.perf_counter()
            await ws.send(
                json.dumps({"seq": seq, "x": rng.uniform(0, 1799), "y": rng.uniform(0, 1199)})
            )
            answer = json.loads(await ws.recv())
            if "error" in answer or answer.get("seq") != seq:
                out["errors"].append(answer.get("error", f"answer {answer.get('seq')} for {seq}"))
            else:
                out["latency_ms"].append((time.perf_counter() - sent) * 1000)
            if mixed and seq % MIXED_EVERY == 0:
                started = time.perf_counter()
                errors = await asyncio.to_thread(_labelling_round, url, image_id, rng)
                out["errors"].extend(errors)
                out["rounds_ms"].append((time.perf_counter() - started) * 1000)


async def _load(
    url: str, image_id: str, clients: int, seconds: float, pid: int, mixed: bool
) -> dict:
    out: dict = {"errors": [], "latency_ms": [], "rss_mb": [], "rounds_ms": []}

    async def sample() -> None:
        while True:
            out["rss_mb"].append(rss_mb(pid))
            await asyncio.sleep(1.0)

    sampler = asyncio.create_task(sample())
    started = time.monotonic()
    await asyncio.gather(*(_client(url, image_id, seconds, i, out, mixed) for i in range(clients)))
    out["elapsed_s"] = time.monotonic() - started
    sampler.cancel()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=500)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--mixed",
        action="store_true",
        help="soak: clients also click, keep, download and remove objects while hovering",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        checkpoint = args.checkpoint
        if checkpoint is None:
            checkpoint = tmp / "sam_vit_b_random.pth"
            make_checkpoint(checkpoint)
        process, url = start_server(checkpoint, tmp)
        try:
            pid = server_pid(process)
            rss_start = rss_mb(pid)
            hover = hover_in_browser(url, args.image, args.moves)
            load = asyncio.run(
                _load(url, hover["image_id"], args.clients, args.seconds, pid, args.mixed)
            )
        finally:
            process.terminate()
            process.wait(30)
    report(args, hover, load, rss_start)


def report(args: argparse.Namespace, hover: dict, load: dict, rss_start: float) -> None:
    rt, server = hover["round_trip_ms"], hover["server_ms"]
    lat, rss = load["latency_ms"], load["rss_mb"]
    half = rss[len(rss) // 2 :] or rss
    last = rss[3 * len(rss) // 4 :] or rss
    second = rss[len(rss) // 4 : len(rss) // 2] or rss
    result = {
        "machine": f"{cpu_model()}, {os.cpu_count()} cores, {platform.python_version()}",
        "hover_moves": len(rt),
        "hover_p50_ms": round(statistics.median(rt), 1),
        "hover_p95_ms": round(percentile(rt, 95), 1),
        "hover_max_ms": round(max(rt), 1),
        "server_decode_p50_ms": round(statistics.median(server), 1),
        "server_decode_p95_ms": round(percentile(server, 95), 1),
        "load_clients": args.clients,
        "load_seconds": round(load["elapsed_s"], 1),
        "load_answers": len(lat),
        "load_answers_per_s": round(len(lat) / load["elapsed_s"], 1),
        "load_p50_ms": round(statistics.median(lat), 1) if lat else None,
        "load_p95_ms": round(percentile(lat, 95), 1) if lat else None,
        "load_errors": len(load["errors"]),
        "load_mixed_rounds": len(load["rounds_ms"]),
        "load_round_p50_ms": round(statistics.median(load["rounds_ms"]))
        if load["rounds_ms"]
        else None,
        "rss_after_start_mb": round(rss_start),
        "rss_peak_mb": round(max(rss)),
        "rss_growth_second_half_mb": round(max(half) - min(half)),
        "rss_growth_last_quarter_mb": round(max(last) - min(last)),
        # downloads allocate large temporary images, so the RSS swings; the trend is the
        # median of the last quarter of the run against that of the second quarter
        "rss_median_drift_mb": round(statistics.median(last) - statistics.median(second)),
    }
    for key, value in result.items():
        print(f"{key:28s} {value}")
    if load["errors"]:
        print("first errors:", load["errors"][:5])
    if args.json:
        args.json.write_text(json.dumps({**result, "rss_mb_each_second": rss}, indent=2))


if __name__ == "__main__":
    main()
