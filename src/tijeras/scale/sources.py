"""Which images a run labels, and the output name of each.

A source is an image, a folder (walked recursively, hidden names skipped) or a list file
(``.txt``: one path or URI per line, optionally ``path<TAB>name``; relative paths are read from
the list's folder; ``#`` starts a comment), on a local disk or at any fsspec / pyarrow URI.

The driver only counts: :func:`plan_source` walks the folders and keeps one :class:`Group` per
folder with images (its relative path and count), or the list file's line count, so its memory
does not grow with the number of images; the workers list each group (:func:`group_entries`,
:func:`list_entries`). An image's output name mirrors its place under the source:
``a/b/photo.jpg`` -> ``a/b/photo`` (the run writes ``a/b/photo.json``); two images of one folder
with the same stem are told apart as ``tijeras everything`` does (``photo_jpg``, ``photo_png``).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tijeras.errors import TijerasError
from tijeras.scale.store import is_uri, open_filesystem

__all__ = [
    "IMAGE_SUFFIXES",
    "LIST_SUFFIXES",
    "Entry",
    "Group",
    "Source",
    "group_entries",
    "list_entries",
    "output_stems",
    "plan_source",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
"""Files that are images, by suffix (any case)."""

LIST_SUFFIXES = (".txt", ".lst")
"""A source file with one of these suffixes is a list of images."""

RESERVED = "_tijeras"
"""The output folder's own subfolder (run record, index); no image output may be named so."""


@dataclass(frozen=True)
class Entry:
    """One image of a run.

    Attributes:
        path: where to read it: a local path or a URI.
        name: its output name, ``/``-separated, without suffix.
    """

    path: str
    name: str


@dataclass(frozen=True)
class Group:
    """The images directly inside one folder of the source.

    Attributes:
        folder: the folder relative to the source root (``""`` for the root itself).
        count: how many images it holds.
    """

    folder: str
    count: int


@dataclass(frozen=True)
class Source:
    """A source, counted.

    Attributes:
        root: the source as given (a path or URI).
        kind: ``"image"``, ``"folder"`` or ``"list"``.
        total: the number of images (list lines) in the run.
        groups: for a folder, one entry per folder holding images.
    """

    root: str
    kind: str
    total: int
    groups: tuple[Group, ...] = ()


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES) and not name.startswith(".")


def output_stems(file_names: Sequence[str]) -> list[str]:
    """The output stem of each file of one folder: its stem, or ``stem_ext`` when two files
    share a stem (``photo.jpg`` + ``photo.png`` -> ``photo_jpg``, ``photo_png``)."""
    stems = [os.path.splitext(name) for name in file_names]
    counts: dict[str, int] = {}
    for stem, _ in stems:
        counts[stem] = counts.get(stem, 0) + 1
    return [stem if counts[stem] == 1 else f"{stem}_{suffix[1:].lower()}" for stem, suffix in stems]


# ----------------------------------------------------------------------------- the driver


def plan_source(source: str) -> Source:
    """Count the images of a source without keeping their names.

    Raises:
        TijerasError: the source does not exist, is not an image, list or folder, or holds no
            image.
    """
    if is_uri(source):
        fs, base = open_filesystem(source)
        if not fs.exists(base):
            raise TijerasError(f"input not found: {source}")
        if fs.isdir(base):
            return _counted(source, _remote_groups(fs, base))
        return _single_file(source)
    path = Path(source)
    if not path.exists():
        raise TijerasError(f"input not found: {source}")
    if path.is_dir():
        return _counted(source, _local_groups(path))
    return _single_file(source)


def _single_file(source: str) -> Source:
    name = posixpath.basename(source.rstrip("/"))
    if name.lower().endswith(LIST_SUFFIXES):
        return Source(source, "list", _count_lines(source))
    if not name.lower().endswith(IMAGE_SUFFIXES):
        raise TijerasError(
            f"{source}: not an image ({', '.join(IMAGE_SUFFIXES)}), a list of images "
            f"({', '.join(LIST_SUFFIXES)}) or a folder"
        )
    return Source(source, "image", 1)


def _counted(source: str, groups: Iterator[Group]) -> Source:
    kept = tuple(groups)
    total = sum(group.count for group in kept)
    if not total:
        raise TijerasError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {source}")
    return Source(source, "folder", total, kept)


def _local_groups(root: Path) -> Iterator[Group]:
    """Folders under ``root`` (depth first, sorted) with their image counts."""
    pending = [""]
    while pending:
        relative = pending.pop()
        folder = root / relative if relative else root
        try:
            with os.scandir(folder) as scan:
                items = sorted((item.name, item.is_dir()) for item in scan)
        except OSError as exc:
            raise TijerasError(f"cannot list folder {str(folder)!r}: {exc.strerror or exc}")
        count = sum(1 for name, is_dir in items if not is_dir and is_image_name(name))
        if count:
            yield Group(relative, count)
        subfolders = [name for name, is_dir in items if is_dir and not name.startswith(".")]
        pending.extend(posixpath.join(relative, name) for name in reversed(subfolders))


def _remote_groups(fs: Any, base: str) -> Iterator[Group]:
    base = base.rstrip("/")
    for folder, subfolders, files in fs.walk(base):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        count = sum(1 for name in files if is_image_name(name))
        if count:
            relative = folder.rstrip("/")[len(base) :].lstrip("/")
            yield Group(relative, count)


def _count_lines(source: str) -> int:
    count = 0
    for _ in _list_lines(source):
        count += 1
    if not count:
        raise TijerasError(f"list {source} names no image")
    return count


def _list_lines(source: str) -> Iterator[str]:
    """The entries of a list file, comments and blank lines left out."""
    try:
        if is_uri(source):
            fs, path = open_filesystem(source)
            stream = fs.open(path, "rt", encoding="utf-8")
        else:
            stream = open(source, encoding="utf-8")  # noqa: SIM115  (closed below)
    except OSError as exc:
        raise TijerasError(f"cannot read list {source}: {exc.strerror or exc}") from None
    with stream:
        for line in stream:
            text = line.rstrip("\r\n")
            if text.strip() and not text.lstrip().startswith("#"):
                yield text


# ----------------------------------------------------------------------------- the workers


def group_entries(root: str, folder: str) -> list[Entry]:
    """The images directly inside ``folder`` (relative to the source ``root``), named."""
    if is_uri(root):
        fs, base = open_filesystem(root)
        where = posixpath.join(base.rstrip("/"), folder).rstrip("/")
        names = sorted(
            posixpath.basename(info["name"].rstrip("/"))
            for info in fs.ls(where, detail=True)
            if info.get("type") == "file"
        )
        prefix = posixpath.join(root.rstrip("/"), folder).rstrip("/")
        paths = [f"{prefix}/{name}" for name in names]
    else:
        where_path = Path(root, *folder.split("/")) if folder else Path(root)
        with os.scandir(where_path) as scan:
            names = sorted(item.name for item in scan if item.is_file())
        paths = [str(where_path / name) for name in names]
    images = [(name, path) for name, path in zip(names, paths) if is_image_name(name)]
    stems = output_stems([name for name, _ in images])
    return [
        Entry(path, posixpath.join(folder, stem) if folder else stem)
        for (_, path), stem in zip(images, stems)
    ]


def single_entry(source: str) -> Entry:
    """The entry of a source that is one image."""
    name = posixpath.basename(source.rstrip("/")) if is_uri(source) else Path(source).name
    return Entry(source, os.path.splitext(name)[0])


def list_entries(source: str, lines: Sequence[str]) -> list[Entry]:
    """Entries of lines of the list file ``source``: ``path`` or ``path<TAB>name``."""
    return [_list_entry(source, line) for line in lines]


def iter_list_lines(source: str) -> Iterator[str]:
    """The lines of a list file that name an image (for the run without a cluster)."""
    return _list_lines(source)


def _list_entry(source: str, line: str) -> Entry:
    path, _, name = line.partition("\t")
    path = path.strip()
    if is_uri(path) or os.path.isabs(path):
        full = path
        default = _strip_scheme(path)
    else:
        full = (
            posixpath.join(posixpath.dirname(source), path)
            if is_uri(source)
            else os.path.join(os.path.dirname(os.path.abspath(source)), path)
        )
        default = path.replace(os.sep, "/")
    chosen = name.strip() or os.path.splitext(default)[0]
    return Entry(full, posixpath.normpath(chosen).lstrip("/"))


def _strip_scheme(path: str) -> str:
    if is_uri(path):
        path = path.split("://", 1)[1]
    return path.lstrip("/")


def check_name(name: str) -> str | None:
    """Why an output name cannot be used, or None."""
    parts = name.split("/")
    if not name or any(part in ("", ".", "..") for part in parts):
        return f"output name {name!r} is not a relative path"
    if parts[0] == RESERVED:
        return f"output name {name!r} is inside the output folder's reserved {RESERVED}/"
    return None
