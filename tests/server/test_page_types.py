"""The page's modules are type-checked: each starts with ``// @ts-check`` and ``tsc --noEmit``
(TypeScript from the npm registry, installed by ``npm ci`` at the repository root) passes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STATIC = REPO / "src" / "tijeras" / "server" / "static"
TSC = REPO / "node_modules" / "typescript" / "bin" / "tsc"


def test_every_module_of_the_page_is_checked() -> None:
    modules = sorted(STATIC.glob("*.js"))
    assert len(modules) >= 10
    unchecked = [p.name for p in modules if not p.read_text().startswith("// @ts-check\n")]
    assert unchecked == []
    for required in ("api", "hover", "prompts", "everything", "objects", "downloads"):
        assert (STATIC / f"{required}.js").is_file()


def test_tsc_finds_no_type_error() -> None:
    node = shutil.which("node")
    if node is None or not TSC.is_file():
        pytest.skip("TypeScript is not installed: run `npm ci` at the repository root (needs node)")
    done = subprocess.run(
        [node, str(TSC), "--noEmit", "-p", str(REPO / "tsconfig.json")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
