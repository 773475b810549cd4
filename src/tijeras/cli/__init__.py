"""The ``tijeras`` command line.

:mod:`tijeras.cli.main` holds the console-script entry ``main``; the Typer ``app`` and the
options every command shares are in :mod:`tijeras.cli.common`; each command module registers
its commands on that app. (``main`` is deliberately not re-exported here, so that
``tijeras.cli.main`` keeps naming the module.)
"""

from __future__ import annotations

from tijeras.cli.main import app

__all__ = ["app"]
