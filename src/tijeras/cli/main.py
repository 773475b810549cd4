"""The ``tijeras`` command line: segment, everything, serve, eval, train, download, models.

Commands::

    tijeras segment IMAGE --point X,Y [--neg-point X,Y] [--box X0,Y0,X1,Y1] [--out mask.png]
    tijeras everything IMAGE|FOLDER --out DIR
    tijeras serve
    tijeras download NAME [NAME ...]
    tijeras models

A mistake in the input (a missing file, a bad prompt, an unknown model) is reported as one
``error: ...`` line on stderr with exit code 2, never as a traceback.

:func:`main`, the console-script entry, first re-executes the process under jemalloc when the
library is installed (:mod:`tijeras.cli.allocator`); heavy modules (torch, numpy, the image code)
are imported inside the commands so that happens as early as possible. Each command module
registers its commands on the shared app of :mod:`tijeras.cli.common`.
"""

from __future__ import annotations

from tijeras.cli import commands as _commands  # noqa: F401  (segment, download, models, doctor)
from tijeras.cli import evaltrain as _evaltrain  # noqa: F401  (eval, train)
from tijeras.cli import everything as _everything  # noqa: F401  (everything)
from tijeras.cli import export as _export  # noqa: F401  (export)
from tijeras.cli import scale as _scale  # noqa: F401  (scale-report; the --ray hooks)
from tijeras.cli import serve as _serve  # noqa: F401  (serve)
from tijeras.cli import text as _text  # noqa: F401  (mcp; the --text hooks)
from tijeras.cli import track as _track  # noqa: F401  (track, eval-video)
from tijeras.cli.allocator import maybe_reexec_with_jemalloc
from tijeras.cli.common import app

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry: move under jemalloc when possible, then run the app."""
    maybe_reexec_with_jemalloc()
    app(prog_name="tijeras")


if __name__ == "__main__":
    main()
