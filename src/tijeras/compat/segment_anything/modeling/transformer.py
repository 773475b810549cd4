"""``segment_anything.modeling.transformer``: ``TwoWayTransformer``."""

from tijeras.models.blocks.transformer import TwoWayTransformer

__all__ = ["TwoWayTransformer"]
