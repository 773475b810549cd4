"""``segment_anything.modeling.mask_decoder``: ``MaskDecoder``."""

from tijeras.models.blocks.mask_decoder import MaskDecoder

__all__ = ["MaskDecoder"]
