"""The steps of a run, as plain functions over entries and rows.

Both executors run them: the Ray Data pipeline (:mod:`tijeras.scale.pipeline`: checking and
decoding in CPU tasks, labelling in an actor pool) and the in-process loop used without a
cluster. A row that reaches the driver is either an index row (see :mod:`tijeras.scale.index`)
for an image this run tried, or a tally of the images a check task found done (their index
rows were written by that task).
"""

from __future__ import annotations

import hashlib
import posixpath
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tijeras.errors import TijerasError
from tijeras.scale.index import TEMP_FOLDER, row, write_part
from tijeras.scale.job import LabelJob
from tijeras.scale.sa1b import HEAD_BYTES, OutputHeader, read_header, sa1b_document
from tijeras.scale.sources import Entry, check_name
from tijeras.scale.store import Location, is_uri, open_filesystem

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Checked", "Decoded", "Run", "check_entries", "decode_entry", "label_entry"]

TALLY = "tally"
LABELLING_ERRORS = (RuntimeError, ValueError, MemoryError)
"""What a labeller may raise for one image besides TijerasError: recorded, not fatal."""
CHECK_BATCH = 1024
"""Entries checked against their outputs per task."""
IMAGE = "image"


@dataclass(frozen=True)
class Run:
    """What every step of one run needs to know.

    Attributes:
        out: the output folder.
        job: how images are labelled (resolved: registered model name, weights identity).
        options_hash: ``job.options_hash()``.
        run_id: this run's id (in each row and output header).
        force: relabel images already done with the same options.
    """

    out: Location
    job: LabelJob
    options_hash: str
    run_id: str
    force: bool = False

    def output(self, entry: Entry) -> str:
        return f"{entry.name}.json"

    def row(self, entry: Entry, status: str, **values: Any) -> dict[str, Any]:
        return row(
            entry.path,
            self.output(entry),
            status,
            model=self.job.model,
            options_hash=self.options_hash,
            run_id=self.run_id,
            **values,
        )


@dataclass(frozen=True)
class Checked:
    """The outcome of checking a batch of entries against the output folder.

    Attributes:
        todo: the entries to label.
        skipped: how many were done already (with this run's options).
        failed: how many cannot be labelled (a bad or clashing output name).
    """

    todo: tuple[Entry, ...]
    skipped: int
    failed: int


def check_entries(run: Run, entries: Sequence[Entry]) -> Checked:
    """Split entries into those to label and those done; write the index rows of the latter
    (one Parquet file, named after the batch, so a retried task replaces it)."""
    todo: list[Entry] = []
    rows: list[dict[str, Any]] = []
    skipped = failed = 0
    for entry in entries:
        problem = check_name(entry.name)
        header = None if problem else _header(run.out, run.output(entry))
        if (
            problem is None
            and header is not None
            and header.options_hash == run.options_hash
            and _clash(header.source, entry.path)
        ):
            problem = (
                f"output {run.output(entry)} already holds the labels of {header.source}; "
                "give the images distinct names (path<TAB>name in a list)"
            )
        if problem is not None:
            rows.append(run.row(entry, "failed", error=problem))
            failed += 1
        elif header is not None and header.options_hash == run.options_hash and not run.force:
            rows.append(
                run.row(
                    entry,
                    "skipped",
                    width=header.width,
                    height=header.height,
                    masks=header.masks,
                    seconds=header.seconds,
                )
            )
            skipped += 1
        else:
            todo.append(entry)
    if rows:
        digest = hashlib.sha256(entries[0].path.encode("utf-8")).hexdigest()[:16]
        write_part(run.out, f"{run.run_id}-check-{digest}", rows)
    return Checked(tuple(todo), skipped, failed)


def _clash(made_from: str, path: str) -> bool:
    """Whether an output made from ``made_from`` belongs to another image than ``path``
    (compared by file name, so a dataset moved or mounted elsewhere still resumes)."""
    return posixpath.basename(made_from.replace("\\", "/")) != posixpath.basename(
        path.replace("\\", "/")
    )


def _header(out: Location, relative: str) -> OutputHeader | None:
    head = out.read_head(relative, HEAD_BYTES)
    return None if head is None else read_header(head)


@dataclass(frozen=True)
class Decoded:
    """An image read and decoded (or why not).

    Attributes:
        entry: the image.
        rgb: H x W x 3 uint8 RGB, or None when it failed.
        size: the file's size in bytes.
        seconds: time spent reading and decoding.
        error: why it failed ("" when it did not).
    """

    entry: Entry
    rgb: np.ndarray | None
    size: int
    seconds: float
    error: str = ""


def decode_entry(entry: Entry) -> Decoded:
    """Read and decode one image; a broken or missing file gives its error, not an exception."""
    from tijeras.io import load_image

    start = time.perf_counter()
    try:
        data = _read(entry.path)
        rgb = load_image(data)
    except TijerasError as exc:
        return Decoded(entry, None, 0, time.perf_counter() - start, _one_line(exc))
    except OSError as exc:
        reason = f"cannot read {entry.path}: {exc.strerror or exc}"
        return Decoded(entry, None, 0, time.perf_counter() - start, reason)
    return Decoded(entry, rgb, len(data), time.perf_counter() - start)


def _read(path: str) -> bytes:
    if is_uri(path):
        fs, inner = open_filesystem(path)
        return fs.cat_file(inner)
    with open(path, "rb") as stream:
        return stream.read()


def label_entry(
    run: Run, label: Callable[[np.ndarray], list[dict[str, Any]]], image: Decoded
) -> dict[str, Any]:
    """Label a decoded image and write its output; returns its index row. An image the
    labeller refuses (a :class:`TijerasError`: out of memory, say) or fails on
    (:data:`LABELLING_ERRORS`) is a ``failed`` row with the reason."""
    entry = image.entry
    common = {"size": image.size, "decode_seconds": image.seconds}
    if image.rgb is None:
        return run.row(entry, "failed", error=image.error, **common)
    height, width = image.rgb.shape[:2]
    start = time.perf_counter()
    try:
        records = label(image.rgb)
    except TijerasError as exc:
        return run.row(entry, "failed", error=_one_line(exc), width=width, height=height, **common)
    except LABELLING_ERRORS as exc:
        # One image the model code fails on must not end a run of millions: it is recorded with
        # the error's type and message (the index keeps it; the next run retries it).
        reason = f"error while labelling ({type(exc).__name__}): {_one_line(exc)}"
        return run.row(entry, "failed", error=reason, width=width, height=height, **common)
    seconds = time.perf_counter() - start
    header = OutputHeader(
        options_hash=run.options_hash,
        model=run.job.model,
        source=entry.path,
        masks=len(records),
        seconds=round(seconds, 4),
        run=run.run_id,
        width=width,
        height=height,
    )
    file_name = posixpath.basename(entry.path.rstrip("/"))
    document = sa1b_document(records, header, entry.name, file_name)
    run.out.write_atomic(run.output(entry), document, temp_folder=TEMP_FOLDER)
    return run.row(
        entry, "done", width=width, height=height, masks=len(records), seconds=seconds, **common
    )


def _one_line(exc: BaseException) -> str:
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or repr(exc)
