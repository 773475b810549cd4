"""``segment_anything.utils.transforms``: ``ResizeLongestSide``."""

from tijeras.compat.sam_transforms import ResizeLongestSide

__all__ = ["ResizeLongestSide"]
