"""Process-level tuning applied when tijeras is imported.

Large fresh tensors cost page faults on every allocation when the C allocator hands memory back
to the kernel after each free; on a small CPU that is a third to a half of SAM's run time. glibc's
malloc is told to keep freed memory for reuse (no per-allocation ``mmap``, no trimming), and
PyTorch's CPU allocator is asked for transparent huge pages. ``TIJERAS_ALLOCATOR=system`` turns
this off. The command-line tools go further and run under jemalloc when it is installed
(:func:`tijeras.cli.main.main`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4

applied: list[str] = []


def tune_allocator() -> list[str]:
    """Apply the allocator settings once; returns what was changed (for diagnostics)."""
    if applied or os.environ.get("TIJERAS_ALLOCATOR", "").lower() == "system":
        return applied
    if "jemalloc" in os.environ.get("LD_PRELOAD", ""):
        applied.append("jemalloc (preloaded)")
        return applied
    if "THP_MEM_ALLOC_ENABLE" in os.environ:
        applied.append(
            f"THP_MEM_ALLOC_ENABLE={os.environ['THP_MEM_ALLOC_ENABLE']} (set by the user)"
        )
    else:
        os.environ["THP_MEM_ALLOC_ENABLE"] = "1"
        applied.append("THP_MEM_ALLOC_ENABLE=1")
    if sys.platform.startswith("linux"):
        name = ctypes.util.find_library("c")
        try:
            libc = ctypes.CDLL(name or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):
            return applied  # not glibc (e.g. musl): nothing to tune
        if mallopt(_M_MMAP_MAX, 0) and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1):
            applied.append("glibc malloc keeps freed memory")
    return applied


tune_allocator()
