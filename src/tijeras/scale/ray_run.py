"""The Ray Data pipeline of a run.

::

    folders / list lines --flat_map--> entries --map_batches(check)--> entries to label + tallies
      --repartition(images_per_call rows per block)--> --map(decode)--> RGB arrays  (CPU tasks)
      --map_batches(LabelWorker, ActorPoolStrategy(size=N), num_gpus=G)--> index rows (actors)
      --> the driver: progress bar, index files

Each worker is a Ray actor holding one model, built once; Ray Data restarts a worker that dies
and retries its images on another (outputs are written atomically, so a retried image replaces
nothing half-written). Images already done are found by the check tasks, which write their
index rows themselves and send the driver only a count. A run is cut into shards of
``Cluster.shard_size`` images, one Ray Data execution each, because an execution keeps a few
kilobytes per block in the driver until it ends.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from tijeras.errors import TijerasError
from tijeras.scale.job import Cluster
from tijeras.scale.labelling import labeller_factory
from tijeras.scale.sources import (
    Entry,
    Source,
    group_entries,
    iter_list_lines,
    list_entries,
    single_entry,
)
from tijeras.scale.stages import (
    CHECK_BATCH,
    IMAGE,
    TALLY,
    Decoded,
    Run,
    check_entries,
    decode_entry,
    label_entry,
)

__all__ = ["LabelWorker", "ray_rows"]

INSTALL = "Ray is not installed: pip install 'tijeras[scale]' (or pip install 'ray[data]')"
PROBE_TIMEOUT = 600.0
"""Seconds to wait for a node able to hold one worker."""
DECODE_MEMORY = 256 * 2**20
"""Memory a decoding task reserves (a 4000 x 3000 photo decodes to 36 MB, plus PIL's copies).
A resource the workers do not ask for, it also keeps Ray Data from fusing decoding into the
workers: images are decoded in CPU tasks, beside them."""
_EMPTY = np.zeros((0, 0, 3), dtype=np.uint8)


def import_ray() -> Any:
    try:
        import ray
        import ray.data
        import ray.data.exceptions  # (caught by _rows)
    except ImportError:
        raise TijerasError(INSTALL) from None
    return ray


@contextmanager
def ray_rows(
    run: Run, source: Source, cluster: Cluster, ready: Callable[[], None]
) -> Iterator[Iterator[Mapping[str, Any]]]:
    """Connect to (or start) Ray, load one worker's model as a check, call ``ready`` and yield
    the run's rows as they come; Ray is shut down afterwards if this run started it."""
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        _connect(ray, cluster)
    try:
        _check_resources(ray, cluster)
        _probe(ray, run, cluster)
        ready()
        yield _rows(ray, run, source, cluster)
    finally:
        if started:
            ray.shutdown()


def _connect(ray: Any, cluster: Cluster) -> None:
    quiet = {"log_to_driver": False, "configure_logging": True, "logging_level": "ERROR"}
    if cluster.address == "local":
        cpus = max(os.cpu_count() or 1, cluster.workers * cluster.cpus_per_worker) + 1
        ray.init(num_cpus=cpus, include_dashboard=False, **quiet)
        return
    _reachable(str(cluster.address))
    try:
        ray.init(address=cluster.address, **quiet)
    except ConnectionError as exc:
        raise TijerasError(
            f"no Ray cluster at {cluster.address!r} ({exc}): start one with `ray start --head`, "
            "or use --ray local for a cluster of this machine only"
        ) from None


def _reachable(address: str, timeout: float = 10.0) -> None:
    """For a ``HOST:PORT`` address, fail at once when nothing listens there (Ray itself would
    retry for minutes)."""
    import socket

    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():
        return  # "auto", ray://... : Ray's own lookup answers quickly
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise TijerasError(
            f"no Ray cluster at {address!r} ({exc.strerror or exc}): start one with "
            "`ray start --head`, or use --ray local for a cluster of this machine only"
        ) from None


def _check_resources(ray: Any, cluster: Cluster) -> None:
    """Refuse a run no node could ever hold one worker of (it would wait forever)."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    fits = [
        n
        for n in nodes
        if n["Resources"].get("CPU", 0) >= cluster.cpus_per_worker
        and n["Resources"].get("GPU", 0) >= cluster.gpus_per_worker
    ]
    if not fits:
        have = "; ".join(
            f"{n.get('NodeManagerAddress')}: {n['Resources'].get('CPU', 0):g} CPU, "
            f"{n['Resources'].get('GPU', 0):g} GPU"
            for n in nodes
        )
        raise TijerasError(
            f"no node of the Ray cluster can hold a worker of {cluster.cpus_per_worker} CPU and "
            f"{cluster.gpus_per_worker:g} GPU (nodes: {have or 'none'})"
        )


def _probe(ray: Any, run: Run, cluster: Cluster) -> None:
    """Load the model once on a worker node, so a model that cannot load is one error before
    any work (not a pool of workers dying one after the other)."""
    remote = ray.remote(
        num_cpus=cluster.cpus_per_worker, num_gpus=cluster.gpus_per_worker, max_retries=0
    )(_load_once)
    ref = remote.remote(run.job)
    ready, _ = ray.wait([ref], timeout=PROBE_TIMEOUT)
    if not ready:
        ray.cancel(ref, force=True)
        raise TijerasError(
            f"no Ray node started a worker ({cluster.cpus_per_worker} CPU, "
            f"{cluster.gpus_per_worker:g} GPU) in {PROBE_TIMEOUT:g} s"
        )
    try:
        ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause if getattr(exc, "cause", None) is not None else exc
        detail = (
            str(cause) if isinstance(cause, TijerasError) else f"{type(cause).__name__}: {cause}"
        )
        raise TijerasError(
            f"model {run.job.model} cannot be loaded on a worker: {detail}"
        ) from None


def _load_once(job: Any) -> None:
    labeller_factory(job.labeller)(job)


def _rows(ray: Any, run: Run, source: Source, cluster: Cluster) -> Iterator[Mapping[str, Any]]:
    import logging

    logging.getLogger("ray.data").setLevel(logging.ERROR)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    try:
        for entries in _shards(ray, source, cluster.shard_size):
            yield from _pipeline(ray, run, entries, cluster).iter_rows()
    except (ray.exceptions.RayError, ray.data.exceptions.SystemException) as exc:
        reason = _reason(ray, exc)
        raise TijerasError(
            f"the run stopped: {reason}; the images labelled so far are kept: run the same "
            "command again to go on"
        ) from None


def _pipeline(ray: Any, run: Run, entries: Any, cluster: Cluster) -> Any:
    """Entries -> index rows: check, one call's images per block, decode, label."""
    per_call = cluster.images_per_call
    return (
        entries.map_batches(
            _check, fn_kwargs={"run": run}, batch_size=CHECK_BATCH, batch_format="pyarrow"
        )
        .repartition(target_num_rows_per_block=per_call)
        .map(_decode, num_cpus=1, memory=DECODE_MEMORY)
        .map_batches(
            LabelWorker,
            fn_constructor_kwargs={"run": run, "threads": cluster.cpus_per_worker},
            batch_size=per_call,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=cluster.workers),
            num_cpus=cluster.cpus_per_worker,
            num_gpus=cluster.gpus_per_worker or None,
        )
    )


def _shards(ray: Any, source: Source, size: int) -> Iterator[Any]:
    """The source's entries as datasets of about ``size`` images each (whole folders: a
    folder larger than ``size`` is a shard of its own; a list is read here, ``size`` lines at a
    time, so neither the driver nor one execution holds all its names)."""
    if source.kind == "image":
        entry = single_entry(source.root)
        yield ray.data.from_items([{"path": entry.path, "name": entry.name}])
    elif source.kind == "folder":
        groups: list[dict[str, str]] = []
        count = 0
        for group in source.groups:
            groups.append({"folder": group.folder})
            count += group.count
            if count >= size:
                yield _folders(ray, source.root, groups)
                groups, count = [], 0
        if groups:
            yield _folders(ray, source.root, groups)
    else:
        lines: list[str] = []
        for line in iter_list_lines(source.root):
            lines.append(line)
            if len(lines) >= size:
                yield _listed(ray, source.root, lines)
                lines = []
        if lines:
            yield _listed(ray, source.root, lines)


def _folders(ray: Any, root: str, groups: list[dict[str, str]]) -> Any:
    return ray.data.from_items(groups).flat_map(_list_group, fn_kwargs={"root": root})


def _listed(ray: Any, root: str, lines: list[str]) -> Any:
    return ray.data.from_items(
        [{"path": e.path, "name": e.name} for e in list_entries(root, lines)]
    )


_ERROR_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)): ")


def _reason(ray: Any, exc: BaseException) -> str:
    """The error at the root of a Ray failure (a worker's exception, not Ray's wrapping)."""
    cause: BaseException = exc
    for _ in range(8):
        inner = getattr(cause, "cause", None) or cause.__cause__
        if inner is None or inner is cause:
            break
        cause = inner
    if not isinstance(cause, (ray.exceptions.RayError, ray.data.exceptions.SystemException)):
        return f"{type(cause).__name__}: {_one_line(str(cause))}"
    # A worker's exception reaches the driver as text: its traceback, then Ray's wrappers.
    for line in str(exc).splitlines():
        match = _ERROR_LINE.match(line.strip())
        if match and not match.group(1).startswith("ray."):
            return _one_line(line.strip())
    return _one_line(str(cause))


def _one_line(text: str, limit: int = 400) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else "unknown error"
    return first if len(first) <= limit else first[: limit - 3] + "..."


def _list_group(item: dict[str, Any], root: str) -> list[dict[str, str]]:
    return [{"path": e.path, "name": e.name} for e in group_entries(root, item["folder"])]


def _check(batch: Any, run: Run) -> dict[str, list[Any]]:
    entries = [
        Entry(path, name)
        for path, name in zip(batch.column("path").to_pylist(), batch.column("name").to_pylist())
    ]
    checked = check_entries(run, entries)
    out: dict[str, list[Any]] = {"kind": [], "path": [], "name": [], "skipped": [], "failed": []}
    for entry in checked.todo:
        for key, value in (("kind", IMAGE), ("path", entry.path), ("name", entry.name)):
            out[key].append(value)
        out["skipped"].append(0)
        out["failed"].append(0)
    if checked.skipped or checked.failed:
        for key, value in (("kind", TALLY), ("path", ""), ("name", "")):
            out[key].append(value)
        out["skipped"].append(checked.skipped)
        out["failed"].append(checked.failed)
    return out


def _decode(item: dict[str, Any]) -> dict[str, Any]:
    if item["kind"] == TALLY:
        return {**item, "image": _EMPTY, "size": 0, "decode_seconds": 0.0, "error": ""}
    decoded = decode_entry(Entry(item["path"], item["name"]))
    return {
        **item,
        "image": _EMPTY if decoded.rgb is None else decoded.rgb,
        "size": decoded.size,
        "decode_seconds": decoded.seconds,
        "error": decoded.error,
    }


class LabelWorker:
    """One model, built once per actor; labels one image per call and writes its output."""

    def __init__(self, run: Run, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self._run = run
        self._label = labeller_factory(run.job.labeller)(run.job)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        rows = []
        for index in range(len(batch["kind"])):
            if batch["kind"][index] == TALLY:
                rows.append(
                    {
                        **_blank(self._run),
                        "kind": TALLY,
                        "skipped": int(batch["skipped"][index]),
                        "failed": int(batch["failed"][index]),
                    }
                )
                continue
            entry = Entry(str(batch["path"][index]), str(batch["name"][index]))
            error = str(batch["error"][index])
            decoded = Decoded(
                entry,
                None if error else np.ascontiguousarray(batch["image"][index]),
                int(batch["size"][index]),
                float(batch["decode_seconds"][index]),
                error,
            )
            rows.append(
                {
                    **label_entry(self._run, self._label, decoded),
                    "kind": IMAGE,
                    "skipped": 0,
                    "failed": 0,
                }
            )
        return {key: [r[key] for r in rows] for key in rows[0]}


def _blank(run: Run) -> dict[str, Any]:
    return run.row(Entry("", ""), "skipped")
