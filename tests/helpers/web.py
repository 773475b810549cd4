"""Helpers for the browser tests: ``tijeras serve`` in its own process, and page probes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(args: list[str], tmp: Path) -> Iterator[str]:
    """Run ``tijeras serve ARGS`` until the generator is closed; yields its URL."""
    port = free_port()
    env = dict(os.environ, TIJERAS_CACHE=str(tmp / "cache"), PYTHONUNBUFFERED="1")
    log = open(tmp / "server.log", "w")  # noqa: SIM115  (closed below)
    process = subprocess.Popen(
        [sys.executable, "-m", "tijeras", "serve", "--port", str(port), *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/info", timeout=2).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((tmp / "server.log").read_text()) from None
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(20)
        log.close()


def get_json(url: str) -> Any:
    return json.loads(urllib.request.urlopen(url, timeout=30).read())


def status_of(url: str) -> int:
    try:
        return urllib.request.urlopen(url, timeout=30).status
    except urllib.error.HTTPError as err:
        return err.code


def count_painted(page: Any, canvas: str) -> int:
    """Pixels with some opacity on a canvas of the page."""
    return page.evaluate(
        """(id) => { const c = document.getElementById(id);
        if (!c.width) return 0;
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }""",
        canvas,
    )


def image_point(page: Any, fx: float, fy: float) -> tuple[float, float]:
    """Screen position of a point given as fractions of the shown image."""
    box = page.locator("#image").bounding_box()
    return box["x"] + fx * box["width"], box["y"] + fy * box["height"]


def open_file(page: Any, path: Path) -> str:
    """Open an image through the file picker; wait until it is encoded; return its id."""
    before = page.evaluate("document.querySelectorAll('#tabs .tab').length")
    page.set_input_files("#file-input", str(path))
    page.wait_for_function(f"document.querySelectorAll('#tabs .tab').length > {before}")
    page.wait_for_selector("#stage[data-ready='1']", timeout=60_000)
    return page.get_attribute("#stage", "data-image-id")


def click_object(page: Any, fx: float = 0.3, fy: float = 0.4) -> None:
    """Click a point of the image and wait for the candidates."""
    page.evaluate("document.getElementById('candidates').replaceChildren()")
    page.mouse.click(*image_point(page, fx, fy))
    page.wait_for_function("document.querySelectorAll('#candidates li').length > 0")


def close_confirmed(page: Any, close_selector: str, image_id: str) -> None:
    """Click a close control, answer "close" in the confirmation, and wait until the server has
    answered the page's DELETE for ``image_id`` (the tab leaves the strip before that answer)."""
    page.click(close_selector)
    with page.expect_response(
        lambda r: r.request.method == "DELETE" and r.url.endswith(f"/api/images/{image_id}")
    ):
        page.click("#confirm button[value='close']")


def toasts(page: Any) -> list[str]:
    return page.locator("#toasts .toast").all_inner_texts()
