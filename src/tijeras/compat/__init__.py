"""Drop-in replacements for the official packages, with their module trees.

:mod:`tijeras.compat.segment_anything` mirrors Meta's ``segment_anything`` and
:mod:`tijeras.compat.sam2` Meta's ``sam2``: the same modules (``segment_anything.utils.
transforms``, ``sam2.build_sam``, ...) holding the same public names. Programs written for the
official packages run by changing their imports, or unchanged after::

    import tijeras.compat
    tijeras.compat.install_aliases()          # "segment_anything" and "sam2" are now tijeras

which makes the official names and every submodule name refer to these modules, so code
importing ``segment_anything`` (or a library built on it, such as segment-geospatial) gets
tijeras. Differences that remain are listed in ``docs/compat.md``.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from types import ModuleType

from ..errors import TijerasError

OFFICIAL_PACKAGES = {
    "segment_anything": "tijeras.compat.segment_anything",
    "sam2": "tijeras.compat.sam2",
}
"""Official package name -> the tijeras package that stands in for it."""


def install_aliases(*names: str) -> list[str]:
    """Make the official package names refer to tijeras' drop-in packages.

    Every module of the package is registered in ``sys.modules`` under its official name as
    well (``segment_anything.utils.transforms`` is ``tijeras.compat.segment_anything.utils.
    transforms``), so any later import of the official names gets tijeras.

    Args:
        names: ``"segment_anything"`` and/or ``"sam2"``; none means both.

    Returns:
        The module names registered.

    Raises:
        TijerasError: an unknown name, or the official package is already imported (alias
            before anything imports it, or objects made from the two would be mixed).
    """
    names = names or tuple(OFFICIAL_PACKAGES)
    unknown = [n for n in names if n not in OFFICIAL_PACKAGES]
    if unknown:
        raise TijerasError(
            f"no drop-in package for {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(OFFICIAL_PACKAGES)}"
        )
    registered: list[str] = []
    for name in names:
        root = importlib.import_module(OFFICIAL_PACKAGES[name])
        present = sys.modules.get(name)
        if present is not None and present is not root:
            raise TijerasError(
                f"{name!r} is already imported from {getattr(present, '__file__', present)}; "
                "call install_aliases() before anything imports it"
            )
        for module in _package_modules(root):
            alias = name + module.__name__[len(root.__name__) :]
            sys.modules[alias] = module
            registered.append(alias)
    return registered


def _package_modules(root: ModuleType) -> list[ModuleType]:
    """The package and all its submodules, imported."""
    modules = [root]
    prefix = root.__name__ + "."
    for info in pkgutil.walk_packages(root.__path__, prefix):
        modules.append(importlib.import_module(info.name))
    return modules
