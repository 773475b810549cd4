"""``sam2.sam2_image_predictor``: ``SAM2ImagePredictor``."""

from tijeras.sam2.predictor import SAM2ImagePredictor

__all__ = ["SAM2ImagePredictor"]
