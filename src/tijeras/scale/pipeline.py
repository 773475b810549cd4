"""``label_dataset``: label every image of a folder, list or URI, resumably, on a Ray cluster
or in this process.

The run is checked before any work: the source is counted, the model's name and weights are
checked, the output folder's run record is compared with this run's options, and (on a
cluster) one worker loads the model. Then images are checked against their outputs, decoded,
labelled and written, and every image gets a row in the Parquet index.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tijeras.automatic.options import EverythingOptions
from tijeras.defaults import DEFAULT_MODEL
from tijeras.errors import TijerasError
from tijeras.scale.index import TEMP_FOLDER, IndexWriter, require_pyarrow
from tijeras.scale.job import EVERYTHING_LABELLER, Cluster, LabelJob
from tijeras.scale.labelling import check_job, labeller_factory
from tijeras.scale.manifest import check_manifest, write_manifest
from tijeras.scale.sources import (
    Source,
    group_entries,
    iter_list_lines,
    list_entries,
    plan_source,
    single_entry,
)
from tijeras.scale.stages import CHECK_BATCH, TALLY, Run, check_entries, decode_entry, label_entry
from tijeras.scale.store import Location, is_uri

__all__ = ["Cluster", "RunSummary", "label_dataset", "make_job"]


@dataclass(frozen=True)
class RunSummary:
    """What a run did.

    Attributes:
        run_id: its id (in its index rows and output headers).
        out: the output folder.
        total: images in the source.
        done: images labelled by this run.
        skipped: images done before, with the same options.
        failed: images that could not be labelled (their errors are in the index).
        masks: masks written by this run.
        seconds: wall time of the run, checks included.
    """

    run_id: str
    out: str
    total: int
    done: int
    skipped: int
    failed: int
    masks: int
    seconds: float


def make_job(
    model: str = DEFAULT_MODEL,
    options: EverythingOptions | Mapping[str, Any] | None = None,
    *,
    checkpoint: str | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    cache: str | None = None,
    tile: int | None = None,
    tile_overlap: int | None = None,
    phrases: Sequence[str] = (),
    labeller: str = EVERYTHING_LABELLER,
    extra: Mapping[str, Any] | None = None,
) -> LabelJob:
    """A resolved :class:`LabelJob`: ``options`` changes the model's own everything-mode
    defaults (a mapping; None values keep the default) or replaces them (a record).

    Raises:
        TijerasError: an unknown model. ValueError: an option out of its bounds.
    """
    from tijeras.catalog import get_spec

    spec = get_spec(model)
    defaults = spec.everything or EverythingOptions()
    if options is None:
        chosen = defaults
    elif isinstance(options, EverythingOptions):
        chosen = options
    else:
        chosen = defaults.replace(**dict(options))
    overlap = 0 if tile is None else (min(256, tile // 4) if tile_overlap is None else tile_overlap)
    job = LabelJob(
        model=spec.name,
        options=chosen,
        checkpoint=None if checkpoint is None else os.path.abspath(checkpoint),
        device=device,
        dtype=dtype,
        cache=None if cache is None else os.path.abspath(os.path.expanduser(cache)),
        tile=tile,
        tile_overlap=overlap,
        phrases=tuple(phrases),
        labeller=labeller,
        extra=tuple(sorted((extra or {}).items())),
    )
    return job.resolved()


def label_dataset(
    source: str,
    out: str,
    job: LabelJob | None = None,
    *,
    cluster: Cluster | None = None,
    force: bool = False,
    progress: bool = True,
    **job_arguments: Any,
) -> RunSummary:
    """Label every image of ``source`` into ``out`` (SA-1B JSON per image + Parquet index).

    Args:
        source: an image, a folder (recursive) or a ``.txt`` list, local or a URI.
        out: the output folder, local or a URI; on a cluster, every node must reach it.
        job: how to label (see :func:`make_job`); or give :func:`make_job`'s arguments
            (``model``, ``options``, ``checkpoint``, ``device``, ``dtype``, ``tile``,
            ``phrases``, ``labeller``...) as keywords.
        cluster: where to run (default: this process, no Ray).
        force: relabel images already done, and accept options that differ from the folder's.
        progress: show a progress bar (images/s, ETA) on stderr.

    Returns:
        What the run did.

    Raises:
        TijerasError: before any work, for a bad source, model, weights, options or cluster.
    """
    start = time.perf_counter()
    if job is None:
        job = make_job(**job_arguments)
    elif job_arguments:
        raise TypeError(f"give a job or its arguments, not both: {', '.join(job_arguments)}")
    cluster = cluster or Cluster()
    # workers run elsewhere (another folder, another node): local paths are made absolute
    source = source if is_uri(source) else os.path.abspath(source)
    out = out if is_uri(out) else os.path.abspath(out)
    require_pyarrow()
    check_job(job)
    counted = plan_source(source)
    location = Location(out)
    _check_output(location, counted)
    check_manifest(location, job, force)
    run = Run(location, job, job.options_hash(), _run_id(), force)

    def ready() -> None:
        location.make()
        location.clear(TEMP_FOLDER)
        write_manifest(location, job)

    if cluster.address is None:
        label = labeller_factory(job.labeller)(job)  # the model loads before any work
        ready()
        tally = _consume(_in_process(run, counted, label), run, counted.total, progress)
    else:
        from tijeras.scale.ray_run import ray_rows

        with ray_rows(run, counted, cluster, ready) as rows:
            tally = _consume(rows, run, counted.total, progress)
    location.clear(TEMP_FOLDER)  # what workers killed during the run left
    return RunSummary(
        run.run_id,
        out,
        counted.total,
        tally["done"],
        tally["skipped"],
        tally["failed"],
        tally["masks"],
        time.perf_counter() - start,
    )


def _check_output(out: Location, source: Source) -> None:
    """A local output folder must be a folder (or not exist), outside the input folder."""
    if not out.local:
        return
    path = Path(out.root)
    if path.exists() and not path.is_dir():
        raise TijerasError(f"output {out.root!r} exists and is not a folder")
    if source.kind == "folder" and not is_uri(source.root):
        root = Path(source.root).resolve()
        if path.resolve() == root or root in path.resolve().parents:
            raise TijerasError(
                f"output {out.root!r} must not be inside the input folder {source.root!r} "
                "(its files would be read as inputs)"
            )


def _run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def _in_process(run: Run, source: Source, label: Any) -> Iterable[Mapping[str, Any]]:
    """The rows of a run done here, one image at a time (the reference for a cluster run)."""
    for chunk in _entry_chunks(source):
        checked = check_entries(run, chunk)
        if checked.skipped or checked.failed:
            yield {"kind": TALLY, "skipped": checked.skipped, "failed": checked.failed}
        for entry in checked.todo:
            yield label_entry(run, label, decode_entry(entry))


def _entry_chunks(source: Source) -> Iterable[list[Any]]:
    if source.kind == "image":
        yield [single_entry(source.root)]
    elif source.kind == "folder":
        for group in source.groups:
            entries = group_entries(source.root, group.folder)
            for start in range(0, len(entries), CHECK_BATCH):
                yield entries[start : start + CHECK_BATCH]
    else:
        lines: list[str] = []
        for line in iter_list_lines(source.root):
            lines.append(line)
            if len(lines) == CHECK_BATCH:
                yield list_entries(source.root, lines)
                lines = []
        if lines:
            yield list_entries(source.root, lines)


def _consume(
    rows: Iterable[Mapping[str, Any]], run: Run, total: int, progress: bool
) -> dict[str, int]:
    """Write the index rows, count, and show progress; returns the counts."""
    from tqdm import tqdm

    writer = IndexWriter(run.out, run.run_id)
    tally = {"done": 0, "skipped": 0, "failed": 0, "masks": 0}
    bar = tqdm(
        total=total,
        unit="image",
        desc="labelling",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
        smoothing=0.05,
    )
    with bar:
        try:
            for item in rows:
                if item.get("kind") == TALLY:
                    tally["skipped"] += int(item["skipped"])
                    tally["failed"] += int(item["failed"])
                    # images found done are not work: the rate and ETA count labelled images
                    bar.total = max(bar.n, (bar.total or 0) - int(item["skipped"]))
                    bar.update(int(item["failed"]))
                else:
                    writer.add(
                        {k: v for k, v in item.items() if k not in ("kind", "skipped", "failed")}
                    )
                    tally[str(item["status"])] += 1
                    tally["masks"] += int(item["masks"])
                    bar.update(1)
                bar.set_postfix(
                    done=tally["done"],
                    skipped=tally["skipped"],
                    failed=tally["failed"],
                    refresh=False,
                )
        finally:
            writer.flush()
    return tally
