"""The allocator tijeras runs under: re-execute under jemalloc when it is installed.

:func:`maybe_reexec_with_jemalloc` runs first in :func:`tijeras.cli.main.main`, before any heavy
import, so the whole command runs under jemalloc (see docs/architecture.md, "Memory allocation").
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from pathlib import Path

JEMALLOC_NAME = "libjemalloc.so.2"
JEMALLOC_DIRS = (
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/usr/local/lib",
)
JEMALLOC_CONF = "background_thread:false,dirty_decay_ms:-1,muzzy_decay_ms:-1"
"""jemalloc settings used unless the user set ``MALLOC_CONF``: keep freed pages for reuse."""
REEXEC_MARKER = "TIJERAS_REEXEC"
"""Set in the re-executed process so it never re-executes again."""
ALLOCATOR_ENV = "TIJERAS_ALLOCATOR"
"""``TIJERAS_ALLOCATOR=system`` keeps the C library's allocator (no re-exec, no tuning)."""


def find_jemalloc() -> str | None:
    """Path (or soname) of an installed ``libjemalloc.so.2``, or None."""
    for folder in JEMALLOC_DIRS:
        candidate = Path(folder) / JEMALLOC_NAME
        if candidate.is_file():
            return str(candidate)
    return ctypes.util.find_library("jemalloc")


def jemalloc_loaded() -> str | None:
    """The jemalloc library mapped into this process (from ``/proc/self/maps``), or None."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                if "jemalloc" in line:
                    parts = line.split(maxsplit=5)
                    return parts[5].strip() if len(parts) == 6 else "jemalloc"
    except OSError:
        pass
    return None


def _interpreter_flags() -> list[str]:
    """The ``-X``/``-W``/``-O`` style flags this interpreter was started with."""
    try:
        import subprocess

        return list(subprocess._args_from_interpreter_flags())  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 (a private helper: fall back to no flags)
        return []


def maybe_reexec_with_jemalloc() -> None:
    """Replace this process by ``python -m tijeras ARGS`` running under jemalloc, if useful.

    Nothing happens off Linux, with ``TIJERAS_ALLOCATOR=system``, in a process that was already
    re-executed (``TIJERAS_REEXEC`` set), when jemalloc is already loaded, or when
    ``libjemalloc.so.2`` is not installed. Otherwise ``LD_PRELOAD`` is prepended with the library,
    ``MALLOC_CONF`` is set (unless the user set it) and :func:`os.execve` does not return.
    """
    if not sys.platform.startswith("linux"):
        return
    if os.environ.get(ALLOCATOR_ENV, "").strip().lower() == "system":
        return
    if os.environ.get(REEXEC_MARKER):
        return
    if not sys.executable or jemalloc_loaded():
        return
    library = find_jemalloc()
    if library is None:
        return
    env = dict(os.environ)
    preload = env.get("LD_PRELOAD", "").strip()
    env["LD_PRELOAD"] = f"{library}:{preload}" if preload else library
    if not env.get("MALLOC_CONF"):
        env["MALLOC_CONF"] = JEMALLOC_CONF
    env[REEXEC_MARKER] = "1"
    # The new process must import this same tijeras, wherever it was found.
    package_root = str(Path(__file__).resolve().parents[2])
    if package_root not in {str(Path(p).resolve()) for p in sys.path if p}:
        extra = env.get("PYTHONPATH")
        env["PYTHONPATH"] = package_root + (os.pathsep + extra if extra else "")
    argv = [sys.executable, *_interpreter_flags(), "-m", "tijeras", *sys.argv[1:]]
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    try:
        os.execve(sys.executable, argv, env)
    except OSError:
        return  # could not exec: carry on with the current allocator
