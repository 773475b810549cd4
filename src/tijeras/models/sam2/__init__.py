"""SAM 2 and SAM 2.1: Hiera trunk, FPN neck, SAM 2's mask decoder and the video modules.

:data:`FAMILY` (in :mod:`.specs`) lists the variants; importing this package is cheap (no
torch). Meta's API (``build_sam2``, ``SAM2ImagePredictor``...) lives in :mod:`tijeras.sam2`.
"""

from .specs import FAMILY

__all__ = ["FAMILY"]
