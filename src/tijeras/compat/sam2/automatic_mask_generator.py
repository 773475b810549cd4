"""``sam2.automatic_mask_generator``: ``SAM2AutomaticMaskGenerator``."""

from tijeras.sam2.generator import SAM2AutomaticMaskGenerator

__all__ = ["SAM2AutomaticMaskGenerator"]
