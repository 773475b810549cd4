"""The process-level allocator settings reported by ``tijeras doctor``."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def _applied(**env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "TIJERAS_ALLOCATOR")}
    clean.pop("THP_MEM_ALLOC_ENABLE", None)
    clean.update(env)
    code = "import json, tijeras._runtime as r; print(json.dumps(r.applied))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=clean, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_huge_pages_are_asked_for_unless_the_user_said_otherwise() -> None:
    assert "THP_MEM_ALLOC_ENABLE=1" in _applied()
    # A user's own setting is kept, and the report says what is in force.
    kept = _applied(THP_MEM_ALLOC_ENABLE="0")
    assert "THP_MEM_ALLOC_ENABLE=1" not in kept
    assert "THP_MEM_ALLOC_ENABLE=0 (set by the user)" in kept
    assert _applied(TIJERAS_ALLOCATOR="system") == []
