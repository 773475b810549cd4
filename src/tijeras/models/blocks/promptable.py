"""What the SAM-style families share of the model contract: an image encoder, a prompt encoder
and a mask decoder, pixel statistics as buffers, and everything mode on a grid of points.

A family subclasses :class:`PromptableModel`, registers its pixel statistics
(:meth:`PromptableModel.register_pixel_stats`), has an ``image_encoder`` and names its prompt
side in :meth:`PromptableModel.prompt_modules` (SAM calls
them ``prompt_encoder``/``mask_decoder``, SAM 2 ``sam_prompt_encoder``/``sam_mask_decoder``, as
their checkpoints do); the members below follow from those.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .common import encoder_blocks

if TYPE_CHECKING:
    from ...automatic.options import EverythingOptions


class PromptableModel(nn.Module):
    """Shared members of the families with a SAM-style prompt side (see the module docstring)."""

    image_format = "RGB"

    def register_pixel_stats(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        """The input normalisation as non-persistent buffers (they follow ``.to()``; no
        checkpoint holds them)."""
        self.register_buffer("pixel_mean", torch.tensor(mean).view(-1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(std).view(-1, 1, 1), persistent=False)

    def image_encoder_module(self) -> nn.Module:
        """The image encoder (frozen in training; LoRA adapters go into its linear layers)."""
        return self.image_encoder

    def prompt_modules(self) -> tuple[nn.Module, nn.Module]:
        """The prompt encoder and the mask decoder."""
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the prompt side (prompt encoder and mask decoder)."""
        return self.prompt_modules()[1].iou_token.weight.dtype

    @property
    def encoder_dtype(self) -> torch.dtype:
        return next(self.image_encoder_module().parameters()).dtype

    @property
    def image_size(self) -> int:
        return self.input_spec.image_size

    def set_decoder_dtype(self, dtype: torch.dtype) -> None:
        """Run the prompt side in ``dtype`` (e.g. float32 behind a bfloat16 encoder)."""
        for module in self.prompt_modules():
            module.to(dtype=dtype)

    def decoder_parameters(self) -> list[nn.Parameter]:
        """The parameters training updates: prompt encoder and mask decoder."""
        return [p for module in self.prompt_modules() for p in module.parameters()]

    def encoder_blocks(self) -> list[nn.Module]:
        """The encoder's repeated blocks in order (TinyViT: every block of every stage)."""
        return encoder_blocks(self.image_encoder_module())

    def mask_generator(self, options: EverythingOptions, output_mode: str = "binary_mask") -> Any:
        """Everything mode: a grid of point prompts (Meta's algorithm, the family's options)."""
        from ...automatic.generator import AutoMaskGenerator

        return AutoMaskGenerator(self, options, output_mode=output_mode)
