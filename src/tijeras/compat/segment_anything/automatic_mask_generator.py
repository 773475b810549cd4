"""``segment_anything.automatic_mask_generator``: ``SamAutomaticMaskGenerator``."""

from tijeras.compat.sam_generator import SamAutomaticMaskGenerator

__all__ = ["SamAutomaticMaskGenerator"]
