"""SAM (ViT-B/L/H) and MobileSAM (TinyViT encoder): one family, one model class.

MobileSAM is a :class:`~tijeras.models.sam.model.Sam` whose config carries a
:class:`~tijeras.models.sam.config.TinyViTConfig`; it shares SAM's decoder, fast path and
everything mode. :data:`FAMILY` (in :mod:`.specs`) lists the variants; importing this package
is cheap (no torch).
"""

from .specs import FAMILY

__all__ = ["FAMILY"]
