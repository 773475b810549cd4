"""``tijeras serve --folder DIR``: label the images of a folder one after another.

The folder's images are listed by name (natural order: ``2.jpg`` before ``10.jpg``). An image
is opened from the disk by its listed name only, so no request can read another file. The
objects kept on an image are remembered here, by file name, while the server runs: closing or
evicting the image loses nothing, and reopening it brings them back. The COCO file of the whole
folder (every image opened, with its objects) is written only when the user asks, to a ``.json``
path inside the folder, never over an existing file unless asked to.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import TijerasError
from .exports import objects_coco
from .settings import FOLDER_SUFFIXES
from .store import ImageEntry, KeptObject, MaskEntry


class FolderError(TijerasError):
    """A folder file that is not listed, or a COCO path that may not be written."""


class CocoFileExistsError(FolderError):
    """The COCO file exists and overwriting it was not asked for."""


@dataclass(frozen=True)
class RememberedObject:
    """A kept object of a folder image, independent of the image's entry."""

    id: str
    name: str
    rle: dict[str, Any]
    area: int
    bbox: tuple[float, ...]
    score: float


@dataclass(frozen=True)
class RememberedImage:
    """A folder image that was opened: its size and its kept objects."""

    height: int
    width: int
    objects: tuple[RememberedObject, ...] = ()


def _natural(name: str) -> list[Any]:
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", name)]


class Folder:
    """The served folder: its listing and the objects kept on its images."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).resolve()
        self._images: dict[str, RememberedImage] = {}
        self._lock = threading.Lock()

    def files(self) -> list[str]:
        """Names of the folder's images (no sub-folders, no hidden files), natural order."""
        names = [
            p.name
            for p in self.path.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in FOLDER_SUFFIXES
        ]
        return sorted(names, key=_natural)

    def file(self, name: str) -> Path:
        """The path of a listed image; any other name (``../x``, a text file) is refused."""
        if name not in self.files():
            raise FolderError(f"no image named {name!r} in the served folder")
        return self.path / name

    def summary(self) -> dict[str, Any]:
        """The listing with each image's number of kept objects (None: never opened)."""
        with self._lock:
            opened = dict(self._images)
        return {
            "name": self.path.name,
            "files": [
                {"name": n, "objects": len(opened[n].objects) if n in opened else None}
                for n in self.files()
            ],
        }

    def remember(self, entry: ImageEntry) -> None:
        """Record the entry's kept objects under its file name (after every change)."""
        if entry.folder_file is None:
            return
        with entry.lock:
            objects = tuple(
                RememberedObject(o.id, o.name, m.rle, m.area, tuple(m.bbox), m.score)
                for o in entry.objects
                if (m := entry.masks.get(o.mask_id)) is not None
            )
        with self._lock:
            self._images[entry.folder_file] = RememberedImage(entry.height, entry.width, objects)

    def restore(self, entry: ImageEntry) -> None:
        """Put the objects remembered for the entry's file back on the (new) entry."""
        assert entry.folder_file is not None
        with self._lock:
            known = self._images.get(entry.folder_file)
        if known is None:
            self.remember(entry)  # opened: the COCO file lists it, even with no object
            return
        for obj in known.objects:
            mask = MaskEntry(
                rle=obj.rle,
                score=obj.score,
                low_res=None,
                area=obj.area,
                bbox=list(obj.bbox),
                source="kept",
                pinned=True,
            )
            mask_id = entry.add_mask(mask, entry.mask_limit)
            with entry.lock:
                entry.objects.append(KeptObject(id=obj.id, name=obj.name, mask_id=mask_id))

    def coco(self, segmentation: str = "rle") -> dict[str, Any]:
        """One COCO dataset of every image opened, in the folder's order."""
        from ..io.coco import merge_coco

        with self._lock:
            opened = dict(self._images)
        order = [n for n in self.files() if n in opened]
        order += sorted(set(opened) - set(order), key=_natural)  # since removed from disk
        datasets = []
        for index, name in enumerate(order, start=1):
            image = opened[name]
            objects = [(o.name, _as_mask(o)) for o in image.objects]
            datasets.append(
                objects_coco(name, image.height, image.width, objects, segmentation, index)
            )
        return merge_coco(datasets) if datasets else merge_coco([_empty()])

    def write_coco(self, path: str, segmentation: str, overwrite: bool) -> dict[str, Any]:
        """Write :meth:`coco` to ``path`` (relative to the folder, or absolute inside it)."""
        target = self._target(path)
        if target.exists() and not overwrite:
            raise CocoFileExistsError(f"{target} exists; ask to overwrite it or give another name")
        dataset = self.coco(segmentation)
        temporary = target.with_name(f".{target.name}.partial")
        try:
            temporary.write_text(json.dumps(dataset), encoding="utf-8")
            os.replace(temporary, target)
        except OSError as err:
            temporary.unlink(missing_ok=True)
            raise FolderError(f"cannot write {target}: {err.strerror or err}") from None
        return {
            "path": str(target),
            "images": len(dataset["images"]),
            "annotations": len(dataset["annotations"]),
        }

    def _target(self, path: str) -> Path:
        given = Path(path)
        target = (given if given.is_absolute() else self.path / given).resolve()
        if not target.is_relative_to(self.path):
            raise FolderError(f"{path!r} is outside the served folder {self.path}")
        if target.suffix.lower() != ".json":
            raise FolderError(f"{path!r}: the COCO file must end in .json")
        if not target.parent.is_dir():
            raise FolderError(f"{path!r}: folder {target.parent} does not exist")
        if target.is_dir():
            raise FolderError(f"{path!r} is a folder")
        return target


def _as_mask(obj: RememberedObject) -> MaskEntry:
    return MaskEntry(obj.rle, obj.score, None, obj.area, list(obj.bbox), "kept", True)


def _empty() -> dict[str, Any]:
    from .. import __version__

    return {
        "info": {"description": "Segment Anything masks made by tijeras", "version": __version__},
        "images": [],
        "annotations": [],
        "categories": [],
    }
