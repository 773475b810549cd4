"""The Parquet index of a labelling run: one row per image, written as the run goes.

The index is the folder ``OUT/_tijeras/index/``: Parquet files, each written whole (atomically)
by the driver every 2000 rows or minute, or by a worker for the images it found already done.
Any Parquet reader takes the folder as one table (pyarrow, pandas, DuckDB, Ray). Every run
adds one row per image of its source; :func:`read_index` keeps the newest row of each image, so
a resumed run's rows stand for the images it did and, as ``skipped``, for the images an earlier
run did (their counts copied from the outputs' first lines).

Columns: ``path`` (the image), ``output`` (the label file, relative), ``status`` (``done``,
``skipped``: done before, ``failed``), ``error``, ``width``, ``height``, ``bytes`` (of the image
file), ``masks``, ``seconds`` (labelling), ``decode_seconds``, ``model``, ``options_hash``,
``run_id``, ``finished_at`` (Unix seconds).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from tijeras.errors import TijerasError
from tijeras.scale.store import Location

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "INDEX_FOLDER",
    "STATUSES",
    "TEMP_FOLDER",
    "IndexWriter",
    "index_schema",
    "read_index",
    "row",
]

INDEX_FOLDER = "_tijeras/index"
TEMP_FOLDER = "_tijeras/tmp"
"""Where files are written before their rename (cleared at the start and end of a run)."""
STATUSES = ("done", "skipped", "failed")

_COLUMNS: tuple[tuple[str, str], ...] = (
    ("path", "string"),
    ("output", "string"),
    ("status", "string"),
    ("error", "string"),
    ("width", "int32"),
    ("height", "int32"),
    ("bytes", "int64"),
    ("masks", "int32"),
    ("seconds", "float64"),
    ("decode_seconds", "float64"),
    ("model", "string"),
    ("options_hash", "string"),
    ("run_id", "string"),
    ("finished_at", "float64"),
)
COLUMNS = tuple(name for name, _ in _COLUMNS)


def require_pyarrow() -> None:
    """Raise the install hint when pyarrow (the index's format) is missing."""
    try:
        import pyarrow.parquet  # noqa: F401  (imports pyarrow too)
    except ImportError:
        raise TijerasError(
            "the run's index is Parquet and needs pyarrow: pip install 'tijeras[scale]'"
        ) from None


def index_schema() -> pa.Schema:
    require_pyarrow()
    import pyarrow as pa

    return pa.schema([(name, getattr(pa, kind)()) for name, kind in _COLUMNS])


def row(
    path: str,
    output: str,
    status: str,
    *,
    model: str,
    options_hash: str,
    run_id: str,
    error: str = "",
    width: int = 0,
    height: int = 0,
    size: int = 0,
    masks: int = 0,
    seconds: float = 0.0,
    decode_seconds: float = 0.0,
) -> dict[str, Any]:
    """One index row (every column filled)."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    return {
        "path": path,
        "output": output,
        "status": status,
        "error": error,
        "width": int(width),
        "height": int(height),
        "bytes": int(size),
        "masks": int(masks),
        "seconds": float(seconds),
        "decode_seconds": float(decode_seconds),
        "model": model,
        "options_hash": options_hash,
        "run_id": run_id,
        "finished_at": time.time(),
    }


def write_part(out: Location, name: str, rows: Iterable[Mapping[str, Any]]) -> None:
    """Write rows as the index file ``name`` (atomically; the same name is replaced)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, list[Any]] = {column: [] for column in COLUMNS}
    for item in rows:
        for column in COLUMNS:
            columns[column].append(item[column])
    table = pa.table(columns, schema=index_schema())
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    out.write_atomic(
        f"{INDEX_FOLDER}/{name}.parquet", sink.getvalue().to_pybytes(), temp_folder=TEMP_FOLDER
    )


class IndexWriter:
    """Collects the rows the driver receives and writes them every ``every_rows`` rows or
    ``every_seconds`` seconds, so a killed driver loses at most that many rows (which the next
    run writes again, as ``skipped``, from the outputs themselves)."""

    def __init__(
        self, out: Location, run_id: str, every_rows: int = 2000, every_seconds: float = 60.0
    ) -> None:
        self._out = out
        self._run_id = run_id
        self._every_rows = every_rows
        self._every_seconds = every_seconds
        self._rows: list[Mapping[str, Any]] = []
        self._parts = 0
        self._last = time.monotonic()

    def add(self, item: Mapping[str, Any]) -> None:
        self._rows.append(item)
        if (
            len(self._rows) >= self._every_rows
            or time.monotonic() - self._last >= self._every_seconds
        ):
            self.flush()

    def flush(self) -> None:
        self._last = time.monotonic()
        if not self._rows:
            return
        write_part(self._out, f"{self._run_id}-{self._parts:06d}", self._rows)
        self._parts += 1
        self._rows = []


def read_index(out: str | Location, latest: bool = True) -> pa.Table:
    """The index of an output folder: every row, or (``latest``) the newest row per image.

    Raises:
        TijerasError: the folder has no index, or pyarrow is missing.
    """
    require_pyarrow()
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    location = out if isinstance(out, Location) else Location(str(out))
    names = [
        n
        for n in location.list_files(INDEX_FOLDER)
        if n.endswith(".parquet") and not n.startswith(".")
    ]
    if not names:
        raise TijerasError(
            f"no index in {location.root}: expected {INDEX_FOLDER}/*.parquet "
            "(written by `tijeras everything ... --ray`)"
        )
    tables = []
    for name in names:
        data = location.read_bytes(f"{INDEX_FOLDER}/{name}")
        tables.append(pq.read_table(pa.BufferReader(data), schema=index_schema()))
    table = pa.concat_tables(tables)
    if not latest or table.num_rows == 0:
        return table
    order = pc.sort_indices(table, [("path", "ascending"), ("finished_at", "ascending")])
    table = table.take(order)
    paths = table.column("path").to_numpy(zero_copy_only=False)
    last = np.ones(len(paths), dtype=bool)
    last[:-1] = paths[:-1] != paths[1:]
    return table.filter(pa.array(last))
