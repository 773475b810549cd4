"""The ``tijeras`` command line (``tijeras segment``, ``tijeras download``, ``tijeras models``).

The code lives in :mod:`tijeras.cli.main`: ``tijeras.cli.main.main`` is the console-script entry
and ``app`` the Typer app. (``main`` is deliberately not re-exported here, so that
``tijeras.cli.main`` keeps naming the module.)
"""

from __future__ import annotations

from tijeras.cli.main import app

__all__ = ["app"]
