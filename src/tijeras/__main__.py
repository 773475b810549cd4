"""``python -m tijeras``: the same command line as the ``tijeras`` console script."""

from __future__ import annotations

from tijeras.cli.main import main

if __name__ == "__main__":
    main()
