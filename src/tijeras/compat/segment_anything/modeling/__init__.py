"""``segment_anything.modeling``: tijeras' SAM modules under Meta's class names.

They keep the checkpoint's attribute names (so ``isinstance`` checks, ``state_dict`` keys and
attribute access such as ``sam.image_encoder.img_size`` work); they are built from tijeras'
typed configs, so their constructors are not Meta's (see ``docs/compat.md``).
"""

from tijeras.compat.segment_anything.modeling.image_encoder import ImageEncoderViT
from tijeras.compat.segment_anything.modeling.mask_decoder import MaskDecoder
from tijeras.compat.segment_anything.modeling.prompt_encoder import PromptEncoder
from tijeras.compat.segment_anything.modeling.sam import Sam
from tijeras.compat.segment_anything.modeling.transformer import TwoWayTransformer

__all__ = ["ImageEncoderViT", "MaskDecoder", "PromptEncoder", "Sam", "TwoWayTransformer"]
