"""SAM 3 (Segment Anything with Concepts): text and exemplar prompts find every instance of a
concept; points and boxes segment one object, as SAM 2 does.

:data:`FAMILY` (in :mod:`.specs`) lists the variants; importing this package is cheap (no
torch). Meta's processor API (``build_sam3_image_model``, ``Sam3Processor``) lives in
:mod:`tijeras.sam3`.
"""

from .specs import FAMILY

__all__ = ["FAMILY"]
