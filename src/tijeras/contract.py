"""The model contract: what every model family provides, and all that the rest of tijeras uses.

The engine (:class:`~tijeras.Predictor`), everything mode, the server, the drop-in APIs,
evaluation and training hold a model only through :class:`SegmentationModel`; none of them
reads a family's submodules. A family (one folder under :mod:`tijeras.models`) implements it
and registers its variants in :mod:`tijeras.catalog`.

An image goes through the contract in four steps::

    x = model.preprocess(resized)                  # 1 x 3 x S x S model input
    features, extra = model.encode_image(x)        # -> ImageEmbedding (by the engine)
    prepared = model.prepare(embedding)            # prompt-independent decoder part, once
    decoded = model.decode(prepared, prompts)      # PromptBatch -> Decoded, per prompt batch
    logits = model.postprocess_masks(decoded.low_res_logits, input_size, original_size)

Capabilities beyond points, boxes and masks are separate protocols, so a family offers only
what it has: :class:`Trainable` (fine-tuning). Text prompts and exemplar boxes travel in the
same :class:`~tijeras.types.PromptBatch` (``text``, ``exemplar_boxes``); a family that does not
take a prompt kind says so in :attr:`InputSpec.prompt_kinds` and the engine refuses it with a
clear error before decoding.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import torch
from torch import nn

from .types import Decoded, ImageEmbedding, PreparedImage, PromptBatch

if TYPE_CHECKING:
    from .automatic.options import EverythingOptions

POINT_PROMPTS = frozenset({"points", "boxes", "masks"})


@dataclass(frozen=True)
class InputSpec:
    """How a family wants its images and what its outputs look like.

    Attributes:
        image_size: side S of the square model input.
        resize: ``"longest_side"`` (keep the aspect ratio, pad the rest with zeros after
            normalising: SAM) or ``"square"`` (stretch the whole image to S x S: SAM 2).
        embedding_grid: (h, w) of the image embedding.
        mask_input_size: (h, w) of the low-res logits and of a mask prompt.
        mask_threshold: logit above which a pixel is in the mask.
        prompt_kinds: the :attr:`PromptBatch.kinds` the family decodes.
        image_format: channel order the model expects.
    """

    image_size: int
    resize: Literal["longest_side", "square"]
    embedding_grid: tuple[int, int]
    mask_input_size: tuple[int, int]
    mask_threshold: float = 0.0
    prompt_kinds: frozenset[str] = POINT_PROMPTS
    image_format: str = "RGB"


@runtime_checkable
class SegmentationModel(Protocol):
    """A promptable segmentation model (an ``nn.Module``) as every caller sees it."""

    input_spec: InputSpec
    everything_defaults: EverythingOptions

    @property
    def device(self) -> torch.device: ...

    @property
    def encoder_dtype(self) -> torch.dtype: ...

    def set_decoder_dtype(self, dtype: torch.dtype) -> None:
        """Run the prompt side (prompt encoder, mask decoder) in ``dtype``."""
        ...

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """1 x 3 x h x w resized image (0-255) -> 1 x 3 x S x S model input."""
        ...

    def encode_image(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Model input -> 1 x C x h x w embedding and the family's extra per-image tensors."""
        ...

    def prepare(self, embedding: ImageEmbedding) -> PreparedImage:
        """The prompt-independent part of the decoder, computed once per image."""
        ...

    def decode(
        self,
        prepared: PreparedImage,
        prompts: PromptBatch,
        *,
        multimask: bool,
        masks_only: bool = False,
    ) -> Decoded:
        """Decode B prompts (input frame). ``masks_only``: the caller only upscales the logits
        to masks, so those outside the unpadded image may be skipped (not usable as prompts)."""
        ...

    def postprocess_masks(
        self, low_res: torch.Tensor, input_size: Sequence[int], original_size: Sequence[int]
    ) -> torch.Tensor:
        """B x C x h x w low-res logits -> B x C x H x W logits at ``original_size``."""
        ...

    def mask_generator(self, options: EverythingOptions, output_mode: str = "binary_mask") -> Any:
        """The family's everything-mode generator (``generate(image) -> records``)."""
        ...

    def encoder_blocks(self) -> Sequence[nn.Module]:
        """The image encoder's repeated blocks, in order (for progress reporting)."""
        ...


@runtime_checkable
class Trainable(Protocol):
    """A family that can be fine-tuned: a frozen image encoder and a differentiable decoder."""

    def image_encoder_module(self) -> nn.Module:
        """The image encoder (frozen in training; LoRA adapters go into its linear layers)."""
        ...

    def decoder_parameters(self) -> Iterable[nn.Parameter]:
        """The parameters training updates: prompt encoder and mask decoder."""
        ...

    def decode_train(
        self,
        features: torch.Tensor,
        prompts: PromptBatch,
        *,
        multimask: bool,
        extra: Mapping[str, torch.Tensor] | None = None,
    ) -> Decoded:
        """The plain decoder with autograd: B x C x h x w features (one per prompt, or one
        shared by all) and their embedding extras -> logits. Computes the same function as
        :meth:`SegmentationModel.decode` (a test binds the two)."""
        ...


def check_prompt_kinds(spec: InputSpec, prompts: PromptBatch, model_name: str) -> None:
    """Raise a :class:`~tijeras.errors.PromptError` for a prompt kind the family lacks, or
    mask prompts of another size than the model's ``mask_input_size``."""
    from .errors import PromptError

    missing = prompts.kinds - spec.prompt_kinds
    if missing:
        kinds = ", ".join(sorted(missing))
        raise PromptError(
            f"model {model_name} does not take {kinds} prompts "
            f"(it takes {', '.join(sorted(spec.prompt_kinds))})"
        )
    masks = prompts.masks
    h, w = spec.mask_input_size
    if masks is not None and (masks.dim() != 4 or tuple(masks.shape[1:]) != (1, h, w)):
        raise PromptError(
            f"mask prompts of model {model_name} are B x 1 x {h} x {w}, "
            f"got {' x '.join(str(n) for n in masks.shape)}"
        )
