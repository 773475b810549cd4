"""The run record of an output folder: which options its labels were made with.

``OUT/_tijeras/run.json`` holds the options hash and what it covers. A run whose options differ
from the record is refused before any work, with the differences listed, unless it is told to
relabel (``force``): labels made with different options are never mixed silently in one
folder. Each output's first line carries the hash too, so an image is redone exactly when its
own hash differs from the run's.
"""

from __future__ import annotations

import json
import time
from typing import Any

from tijeras.errors import TijerasError
from tijeras.scale.index import TEMP_FOLDER
from tijeras.scale.job import LabelJob, differences
from tijeras.scale.store import Location

__all__ = ["MANIFEST", "check_manifest", "read_manifest", "write_manifest"]

MANIFEST = "_tijeras/run.json"


def read_manifest(out: Location) -> dict[str, Any] | None:
    """The folder's run record, or None when it has none."""
    data = out.read_head(MANIFEST, 1 << 20)
    if data is None:
        return None
    try:
        document = json.loads(data.decode("utf-8"))
        if not isinstance(document, dict) or "options_hash" not in document:
            raise ValueError("no options_hash")
    except (ValueError, UnicodeDecodeError) as exc:
        raise TijerasError(
            f"{out.path(MANIFEST)} is not a tijeras run record ({exc}); "
            "remove it or choose another output folder"
        ) from None
    return document


def check_manifest(out: Location, job: LabelJob, force: bool) -> None:
    """Refuse a run whose options differ from the folder's record (unless ``force``).

    Raises:
        TijerasError: listing the differences and what to do.
    """
    record = read_manifest(out)
    if record is None or record["options_hash"] == job.options_hash() or force:
        return
    changed = differences(record.get("job", {}), job.describe())
    raise TijerasError(
        f"{out.root} holds labels made with other options ({'; '.join(changed) or 'unknown'}): "
        "choose another output folder, or pass --force to relabel every image with these"
    )


def write_manifest(out: Location, job: LabelJob) -> None:
    document = {
        "options_hash": job.options_hash(),
        "job": job.describe(),
        "written_at": time.time(),
    }
    text = json.dumps(document, indent=1) + "\n"
    out.write_atomic(MANIFEST, text.encode("utf-8"), temp_folder=TEMP_FOLDER)
