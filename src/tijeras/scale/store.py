"""Reading and writing files on a local disk or any fsspec / pyarrow filesystem URI.

A :class:`Location` is a folder given as a local path or a URI (``s3://bucket/labels``,
``gs://...``, ``file:///data``); it pickles as its text, and each process opens the filesystem
on first use. Writes are atomic: on a local disk through :mod:`tijeras.scale.files` (temporary
name, fsync, rename); on an object store one PUT, which stores the object whole or not at all;
on other remote filesystems a temporary name moved into place.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tijeras.errors import TijerasError

__all__ = ["Location", "is_uri", "open_filesystem"]

OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss", "r2"})


def is_uri(text: str) -> bool:
    """A ``scheme://`` address rather than a local path."""
    return "://" in text


def open_filesystem(uri: str) -> tuple[Any, str]:
    """``(fsspec filesystem, path inside it)`` for a URI: fsspec's own implementation, or
    pyarrow's filesystem behind fsspec's wrapper when fsspec has none for the scheme."""
    try:
        import fsspec
    except ImportError:  # pragma: no cover - a dependency of the scale extra
        raise TijerasError(
            f"{uri}: reading URIs needs fsspec: pip install 'tijeras[scale]'"
        ) from None
    try:
        return fsspec.core.url_to_fs(uri)
    except (ImportError, ValueError) as fsspec_error:
        try:
            from fsspec.implementations.arrow import ArrowFSWrapper
            from pyarrow import fs as pafs

            filesystem, path = pafs.FileSystem.from_uri(uri)
        except (ImportError, ValueError, OSError):
            raise TijerasError(
                f"{uri}: no filesystem for this address ({fsspec_error}); install the fsspec "
                "package of its scheme (s3fs, gcsfs, adlfs...)"
            ) from None
        return ArrowFSWrapper(filesystem), path


@dataclass(frozen=True)
class Location:
    """A folder, local or remote, that files are read from and written to.

    Attributes:
        root: a local path or a URI.
    """

    root: str
    _fs: list[Any] = field(default_factory=list, compare=False, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {"root": self.root}

    def __setstate__(self, state: dict[str, Any]) -> None:
        object.__setattr__(self, "root", state["root"])
        object.__setattr__(self, "_fs", [])

    @property
    def local(self) -> bool:
        return not is_uri(self.root)

    def path(self, relative: str) -> str:
        """The full path or URI of ``relative`` (``/``-separated) under the root."""
        if self.local:
            return str(Path(self.root, *relative.split("/")))
        return posixpath.join(self.root.rstrip("/"), relative)

    def _filesystem(self) -> tuple[Any, str]:
        if not self._fs:
            self._fs.append(open_filesystem(self.root))
        return self._fs[0]

    def _remote(self, relative: str) -> str:
        _, base = self._filesystem()
        return posixpath.join(base.rstrip("/"), relative) if relative else base

    def make(self) -> None:
        """Create the folder (and parents) if missing."""
        if self.local:
            Path(self.root).mkdir(parents=True, exist_ok=True)
        else:
            fs, base = self._filesystem()
            fs.makedirs(base, exist_ok=True)

    def read_head(self, relative: str, limit: int) -> bytes | None:
        """The first ``limit`` bytes of a file, or None when it does not exist."""
        try:
            if self.local:
                with open(self.path(relative), "rb") as stream:
                    return stream.read(limit)
            fs, _ = self._filesystem()
            with fs.open(self._remote(relative), "rb") as stream:
                return stream.read(limit)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def read_bytes(self, relative: str) -> bytes:
        if self.local:
            return Path(self.path(relative)).read_bytes()
        fs, _ = self._filesystem()
        return fs.cat_file(self._remote(relative))

    def write_atomic(self, relative: str, data: bytes, temp_folder: str | None = None) -> None:
        """Write a file so that it appears complete or not at all; on a local disk its
        temporary file is made in ``temp_folder`` (relative) when given, else beside it."""
        if self.local:
            from tijeras.scale.files import write_bytes_atomic

            temp = None if temp_folder is None else Path(self.path(temp_folder))
            write_bytes_atomic(Path(self.path(relative)), data, temp)
            return
        fs, _ = self._filesystem()
        target = self._remote(relative)
        fs.makedirs(posixpath.dirname(target), exist_ok=True)
        if _protocols(fs) & OBJECT_STORES:
            fs.pipe_file(target, data)
            return
        import os

        folder, name = posixpath.split(target)
        temp = posixpath.join(folder, f".{name}.{os.getpid()}.tmp")
        fs.pipe_file(temp, data)
        fs.mv(temp, target)

    def clear(self, relative: str) -> int:
        """Delete the files of a local subfolder (temporary files); 0 for a remote root, where
        writes leave none."""
        if not self.local:
            return 0
        from tijeras.scale.files import clear_folder

        return clear_folder(Path(self.path(relative)))

    def list_files(self, relative: str) -> list[str]:
        """Names of the files directly in a subfolder (sorted), [] when it does not exist."""
        if self.local:
            folder = Path(self.path(relative))
            if not folder.is_dir():
                return []
            return sorted(p.name for p in folder.iterdir() if p.is_file())
        fs, _ = self._filesystem()
        target = self._remote(relative)
        if not fs.exists(target):
            return []
        return sorted(
            posixpath.basename(info["name"].rstrip("/"))
            for info in fs.ls(target, detail=True)
            if info.get("type") == "file"
        )


def _protocols(fs: Any) -> set[str]:
    protocol = fs.protocol
    return set(protocol) if isinstance(protocol, (tuple, list)) else {protocol}
