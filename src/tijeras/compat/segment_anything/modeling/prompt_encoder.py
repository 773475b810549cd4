"""``segment_anything.modeling.prompt_encoder``: ``PromptEncoder``."""

from tijeras.models.blocks.prompt_encoder import PromptEncoder

__all__ = ["PromptEncoder"]
