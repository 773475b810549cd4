"""``sam2.utils.transforms``: ``SAM2Transforms``."""

from tijeras.sam2.transforms import SAM2Transforms

__all__ = ["SAM2Transforms"]
