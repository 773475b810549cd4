"""The heavy-work queue: one image encoding (or everything run) at a time, in order.

Prompt decoding never waits for this queue: requests for images that are already encoded run
in the web server's own worker threads while the queue's thread encodes the next image.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..contract import SegmentationModel

log = logging.getLogger("tijeras.server")


class HeavyQueue:
    """A single worker thread running submitted jobs first in, first out."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[str, Callable[[], None]] | None] = queue.Queue()
        self._waiting: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="tijeras-encoder", daemon=True)
        self._thread.start()

    def submit(self, key: str, job: Callable[[], None]) -> None:
        """Queue ``job``; ``key`` (an image id) lets callers ask for its place in the queue."""
        with self._lock:
            self._waiting.append(key)
        self._queue.put((key, job))

    def position(self, key: str) -> int | None:
        """How many jobs run before ``key``'s (0: it is next), or None if it is not waiting."""
        with self._lock:
            return self._waiting.index(key) if key in self._waiting else None

    def close(self) -> None:
        self._queue.put(None)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            key, job = item
            with self._lock:
                if key in self._waiting:
                    self._waiting.remove(key)
            try:
                job()
            except Exception:  # a job records its own failure; this keeps the thread alive
                log.exception("background job for %s failed", key)


@contextmanager
def encoder_progress(model: SegmentationModel, report: Callable[[float], Any]) -> Iterator[None]:
    """Call ``report(fraction)`` as the image encoder's blocks finish (0 < fraction <= 1)."""
    blocks = list(model.encoder_blocks())
    done = [0]

    def hook(*_: Any) -> None:
        done[0] += 1
        report(min(done[0] / (len(blocks) + 1), 1.0))  # the neck and the rest: the last step

    handles = [b.register_forward_hook(hook) for b in blocks]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
