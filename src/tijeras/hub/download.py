"""Fetching official checkpoints into a local cache, with resume and integrity checks.

Only the standard library talks to the network (``urllib.request``). A transfer streams into
``<cache>/<filename>.part``; an interrupted one is resumed later with an HTTP ``Range`` request.
The part file takes its final name (atomically, ``os.replace``) only after it passed its check:
its SHA-256 digest where the registry has one, otherwise its exact size plus a strict load as the
expected model.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, DownloadError
from .registry import REGISTRY, CheckpointFile, ModelSpec

__all__ = ["cache_dir", "cached_checkpoint", "download", "model_table"]

CACHE_ENV = "TIJERAS_CACHE"
"""Environment variable naming the cache folder (overridden by an explicit argument)."""

_CHUNK = 1 << 20
_USER_AGENT = "tijeras-downloader/0.1 (+python urllib)"
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)


def cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The folder downloaded checkpoints live in (not created here).

    ``override`` if given, else the ``TIJERAS_CACHE`` environment variable, else
    ``~/.cache/tijeras``.
    """
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "tijeras"


def cached_checkpoint(name: str, cache: str | os.PathLike[str] | None = None) -> Path | None:
    """The cached checkpoint of model ``name`` under its final name, or ``None`` if absent.

    A model without downloadable weights has no cached file either.
    """
    spec = REGISTRY.get(name)
    if spec.checkpoint is None:
        return None
    path = cache_dir(cache) / spec.checkpoint.filename
    return path if path.is_file() else None


def download(
    name: str,
    cache: str | os.PathLike[str] | None = None,
    *,
    progress: bool = True,
    force: bool = False,
    timeout: float = 30.0,
    url: str | None = None,
) -> Path:
    """Fetch the official checkpoint of a registered model into the cache and verify it.

    Args:
        name: a registered model name or alias (``"sam-vit-b"``, ``"vit_b"``).
        cache: the cache folder; see :func:`cache_dir`.
        progress: show a progress bar on stderr.
        force: fetch again even if the file is already in the cache. An existing ``.part`` is
            still resumed; the result is verified either way.
        timeout: seconds a connection attempt or a single read may take.
        url: fetch from this address instead of the registry's (a mirror, a test server).

    Returns:
        The path of the verified checkpoint.

    Raises:
        DownloadError: the model has no downloadable weights, the server answered with an
            error, the network failed (the partial file is kept, a later call resumes it), or
            the file failed its integrity check (the partial file is deleted).
    """
    spec = REGISTRY.get(name)
    ckpt = spec.checkpoint
    if ckpt is None:
        raise DownloadError(f"model {spec.name!r} has no downloadable weights")
    folder = cache_dir(cache)
    final = folder / ckpt.filename
    if final.is_file() and not force:
        return final
    if ckpt.gated and url is None:
        raise DownloadError(
            f"the weights of {spec.name} are gated: request access at {ckpt.url}, download "
            f"{ckpt.filename} with your own account, then place it at {final} (or pass its "
            "path with --checkpoint)"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DownloadError(f"cannot create the cache folder {folder}: {err}") from err
    part = folder / (ckpt.filename + ".part")
    source = url or ckpt.url

    digest = _transfer(source, part, ckpt, timeout=timeout, progress=progress)
    _verify(part, spec, ckpt, digest)
    os.replace(part, final)
    return final


def model_table(cache: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """One row per registered model, for listing: its checkpoint and whether it is cached.

    Keys: ``name``, ``aliases``, ``description``, ``filename``, ``size`` (bytes or ``None``),
    ``check`` (``"sha256"``, ``"size+load"`` or ``None``), ``present`` and ``path`` (``str`` or
    ``None``).
    """
    rows = []
    for model in REGISTRY.names():
        spec = REGISTRY.get(model)
        ckpt = spec.checkpoint
        path = cached_checkpoint(model, cache)
        rows.append(
            {
                "name": spec.name,
                "aliases": list(spec.aliases),
                "description": spec.description,
                "filename": ckpt.filename if ckpt else None,
                "size": ckpt.size if ckpt else None,
                "check": ckpt.check if ckpt else None,
                "present": path is not None,
                "path": str(path) if path is not None else None,
            }
        )
    return rows


# --------------------------------------------------------------------------- transfer


def _transfer(url: str, part: Path, ckpt: CheckpointFile, *, timeout: float, progress: bool) -> str:
    """Bring ``part`` to the whole file, resuming what is there; return its SHA-256 hex digest."""
    restarted = False
    while True:
        offset = part.stat().st_size if part.is_file() else 0
        if ckpt.size is not None and offset > ckpt.size:
            # Longer than the real file: cannot be a prefix of it.
            part.unlink()
            offset = 0
        if ckpt.size is not None and offset == ckpt.size:
            return _hash_file(part)  # complete already (an earlier run stopped before the check)

        headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        request = urllib.request.Request(url, headers=headers)
        try:
            response = urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as err:
            err.close()
            if err.code == 416 and offset and not restarted:
                # The server cannot serve the rest of our part: it is not a prefix of this file.
                part.unlink(missing_ok=True)
                restarted = True
                continue
            if err.code == 416:
                part.unlink(missing_ok=True)
            raise DownloadError(
                f"HTTP {err.code} {err.reason} while fetching {url}"
                + (" (the partial file is kept; run again to resume)" if part.is_file() else "")
            ) from err
        except urllib.error.URLError as err:
            raise DownloadError(f"cannot reach {url}: {err.reason}") from err
        except (OSError, http.client.HTTPException) as err:
            raise DownloadError(f"cannot reach {url}: {err}") from err

        with response:
            status = response.status
            if status == 206:
                start, total = _parse_content_range(response.headers.get("Content-Range"))
                if start != offset:
                    if restarted:
                        raise DownloadError(
                            f"{url} answered a resume request at byte {offset} with bytes from "
                            f"{start}; cannot resume"
                        )
                    part.unlink(missing_ok=True)
                    restarted = True
                    continue
                mode = "ab"
            elif status == 200:
                # A fresh transfer, or a server that ignored Range: either way it starts at zero.
                offset, total, mode = 0, None, "wb"
            else:
                raise DownloadError(f"unexpected HTTP {status} while fetching {url}")

            length = _content_length(response)
            if length is not None:
                total = offset + length
            elif total is None:
                total = ckpt.size

            hasher = _hash_file(part, raw=True) if mode == "ab" else hashlib.sha256()
            received = offset
            bar = _progress_bar(ckpt.filename, total, offset, enabled=progress)
            try:
                with open(part, mode) as fh:
                    while True:
                        try:
                            # read1: whatever arrived (up to a chunk), so a stall loses nothing
                            chunk = response.read1(_CHUNK)
                        except (OSError, http.client.HTTPException) as err:
                            raise DownloadError(
                                f"transfer of {url} failed after {received} bytes: "
                                f"{_reason(err)} (the partial file is kept; run again to resume)"
                            ) from err
                        if not chunk:
                            break
                        fh.write(chunk)
                        hasher.update(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
            finally:
                bar.close()

        if length is not None and received < total:
            raise DownloadError(
                f"transfer of {url} stopped after {received} of {total} bytes: connection closed "
                "(the partial file is kept; run again to resume)"
            )
        return hasher.hexdigest()


def _verify(part: Path, spec: ModelSpec, ckpt: CheckpointFile, digest: str) -> None:
    """Check the finished part file; on failure delete it and raise ``DownloadError``."""
    size = part.stat().st_size
    if ckpt.check == "sha256":
        expected = (ckpt.sha256 or "").lower()
        if digest != expected:
            part.unlink(missing_ok=True)
            raise DownloadError(
                f"{ckpt.filename} failed its integrity check: expected SHA-256 {expected}, got "
                f"{digest} ({size} bytes); the download was deleted"
            )
        return
    if ckpt.size is not None and size != ckpt.size:
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"{ckpt.filename} failed its integrity check: expected {ckpt.size} bytes, got {size}; "
            "the download was deleted"
        )
    from .checkpoint import verify_checkpoint

    try:
        verify_checkpoint(part, spec, REGISTRY)
    except Exception as err:  # any failure to load means the file is not the expected one
        part.unlink(missing_ok=True)
        why = str(err) if isinstance(err, CheckpointError) else f"{type(err).__name__}: {err}"
        expected = f"{ckpt.size} bytes that load" if ckpt.size is not None else "a file that loads"
        raise DownloadError(
            f"{ckpt.filename} failed its integrity check: expected {expected} as {spec.name}, "
            f"got {size} bytes that do not ({why}); the download was deleted"
        ) from err


# --------------------------------------------------------------------------- helpers


def _hash_file(path: Path, *, raw: bool = False) -> Any:
    hasher = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            hasher.update(chunk)
    return hasher if raw else hasher.hexdigest()


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """``(first byte, full size)`` of a ``Content-Range`` header; ``None`` where unknown."""
    if not value:
        return None, None
    match = _CONTENT_RANGE.match(value.strip())
    if not match:
        return None, None
    total = match.group(3)
    return int(match.group(1)), (None if total == "*" else int(total))


def _content_length(response: Any) -> int | None:
    value = response.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _reason(err: BaseException) -> str:
    if isinstance(err, http.client.IncompleteRead):
        return "connection closed early"
    return str(err) or type(err).__name__


def _progress_bar(desc: str, total: int | None, initial: int, *, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        disable=not enabled,
    )
