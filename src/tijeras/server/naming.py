"""File names of downloads, made from the image's and the object's names.

A download is named ``<image stem>-<object>-<kind>.<ext>`` (``002-penguin-cutout.png``), so
files saved from several images and objects never overwrite each other. Names keep letters and
digits of any script; anything else (slashes, quotes, control characters) becomes ``-``.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePath
from urllib.parse import quote

_UNSAFE = re.compile(r"[^\w.+]+", re.UNICODE)
_DOTS = re.compile(r"\.{2,}")  # no ".." in a name
_RUNS = re.compile(r"-{2,}")
MAX_PART = 60


def slug(text: str, fallback: str) -> str:
    """``text`` reduced to a safe part of a file name (``fallback`` when nothing is left)."""
    normal = unicodedata.normalize("NFC", text)
    cleaned = _RUNS.sub("-", _DOTS.sub("-", _UNSAFE.sub("-", normal)))
    cleaned = cleaned.strip("-._")[:MAX_PART].strip("-._")
    return cleaned or fallback


def image_stem(image_name: str) -> str:
    """The uploaded file's name without folders and suffix (``photos/002.jpg`` -> ``002``)."""
    name = PurePath(image_name.replace("\\", "/")).name
    return slug(name.rsplit(".", 1)[0] if "." in name else name, "image")


def download_name(image_name: str, label: str | None, kind: str, ext: str) -> str:
    """``download_name("002.jpg", "penguin", "cutout", "png") == "002-penguin-cutout.png"``;
    without a label (the image's own files) ``<stem>-<kind>.<ext>``."""
    parts = [image_stem(image_name)]
    if label is not None:
        parts.append(slug(label, "object"))
    parts.append(kind)
    return f"{'-'.join(parts)}.{ext}"


def content_disposition(filename: str) -> str:
    """An ``attachment`` header value: an ASCII ``filename`` and the exact UTF-8 ``filename*``
    (RFC 6266), so every browser saves the file under its name."""
    ascii_name = filename.encode("ascii", "replace").decode("ascii").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
