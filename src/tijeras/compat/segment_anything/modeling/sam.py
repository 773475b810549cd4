"""``segment_anything.modeling.sam``: ``Sam``."""

from tijeras.models.sam.model import Sam

__all__ = ["Sam"]
