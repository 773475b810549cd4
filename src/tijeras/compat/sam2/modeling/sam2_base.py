"""``sam2.modeling.sam2_base``: ``SAM2Base`` (tijeras' ``Sam2Model``, which answers to Meta's
attribute names and ``forward_image``; see :mod:`tijeras.models.sam2.meta_names`)."""

from tijeras.models.sam2.model import Sam2Model as SAM2Base

__all__ = ["SAM2Base"]
