"""``segment_anything.predictor``: ``SamPredictor``."""

from tijeras.compat.sam_predictor import SamPredictor

__all__ = ["SamPredictor"]
