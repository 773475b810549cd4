"""Files written whole or not at all: a temporary name beside the target, fsync, rename.

A process killed while writing leaves at most a hidden ``.NAME.PID.tmp...`` file, never a half
file under the final name, so "the output exists" means "the output is complete". Used by
``tijeras everything`` and by the distributed labelling of :mod:`tijeras.scale`.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_dir", "atomic_file", "clear_folder", "fsync_dir", "write_bytes_atomic"]


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a hidden temporary path beside ``path`` (same suffix, so writers that pick the
    format from it still do); when the block succeeds the file is flushed to disk and renamed
    onto ``path``; when it fails the temporary file is deleted."""
    temp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield temp
        _fsync_file(temp)
        os.replace(temp, path)
        fsync_dir(path.parent)
    finally:
        if temp.exists():
            temp.unlink()


@contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Like :func:`atomic_file` for a folder: filled under a hidden name, then swapped in (an
    earlier folder of that name is removed first)."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if temp.exists():
        shutil.rmtree(temp)
    temp.mkdir(parents=True)
    try:
        yield temp
        for child in temp.iterdir():
            _fsync_file(child)
        if path.exists():
            shutil.rmtree(path)
        os.replace(temp, path)
        fsync_dir(path.parent)
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)


def write_bytes_atomic(path: Path, data: bytes, temp_folder: Path | None = None) -> None:
    """Write ``data`` to ``path`` atomically, creating the parent folders. With
    ``temp_folder`` (on the same filesystem) the temporary file is made there instead of beside
    the target, so what a killed writer leaves is in one place, for :func:`clear_folder`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if temp_folder is None:
        with atomic_file(path) as temp:
            temp.write_bytes(data)
        return
    temp_folder.mkdir(parents=True, exist_ok=True)
    temp = temp_folder / f"{os.getpid()}-{uuid.uuid4().hex}.part"
    try:
        with temp.open("wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
        fsync_dir(path.parent)
    finally:
        if temp.exists():
            temp.unlink()


def clear_folder(folder: Path) -> int:
    """Delete the files of a temporary folder (what killed writers left); returns how many."""
    if not folder.is_dir():
        return 0
    removed = 0
    for item in folder.iterdir():
        if item.is_file():
            item.unlink(missing_ok=True)
            removed += 1
    return removed


def _fsync_file(path: Path) -> None:
    if not path.is_file():
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
