"""``segment_anything.modeling.image_encoder``: ``ImageEncoderViT``."""

from tijeras.models.sam.image_encoder import ImageEncoderViT

__all__ = ["ImageEncoderViT"]
