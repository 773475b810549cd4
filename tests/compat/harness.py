"""Running code written for the official packages on them and on tijeras, in one process.

``Backends.use("official")`` / ``Backends.use("tijeras")`` makes the official module names
(``segment_anything``, ``sam2`` and ``samgeo``, which imports them) refer to one side for the
duration of a ``with`` block; each side's modules are kept between blocks, and whatever was
imported before is put back afterwards, so other tests see the official packages as usual.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from helpers.parity import official_tiny_sam

ROOTS = ("segment_anything", "sam2", "samgeo")
TINY_KEY = "vit_tiny"


def _take() -> dict[str, Any]:
    taken = {k: v for k, v in sys.modules.items() if k.split(".")[0] in ROOTS and v is not None}
    for k in taken:
        del sys.modules[k]
    return taken


class Backends:
    """Switches the official module names between the official packages and tijeras."""

    def __init__(self) -> None:
        self.kept: dict[str, dict[str, Any]] = {}

    @contextmanager
    def use(self, side: str) -> Iterator[None]:
        if side not in ("official", "tijeras"):
            raise ValueError(side)
        before = _take()
        if side not in self.kept and side == "official":
            self.kept[side] = {k: v for k, v in before.items() if not k.startswith("samgeo")}
        sys.modules.update(self.kept.get(side, {}))
        if side == "tijeras" and side not in self.kept:
            import tijeras.compat

            tijeras.compat.install_aliases()
        try:
            yield
        finally:
            self.kept[side] = _take()
            sys.modules.update(before)


@contextmanager
def tiny_registered(backends: Backends, side: str) -> Iterator[Any]:
    """``backends.use(side)`` with ``sam_model_registry["vit_tiny"]`` registered (as user code
    adds its own builders); yields the side's ``segment_anything`` module."""
    with backends.use(side):
        import segment_anything

        if side == "official":
            segment_anything.sam_model_registry[TINY_KEY] = official_tiny_sam
        else:
            segment_anything.sam_model_registry[TINY_KEY] = segment_anything.sam_model_registry[
                "test-tiny"
            ]
        yield segment_anything


SAM2_CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"
