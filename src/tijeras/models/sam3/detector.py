"""Concept prompts (text and exemplar boxes) against an encoded image: SAM 3's detector path.

Per image, once (:class:`ImageState`, filled lazily so a caller who only clicks never pays for
the detector's part): the stride-14 image tokens and their sine positions, the fusion encoder's
first self-attention, and the prompt-independent half of the pixel decoder (its convolutions of
the neck levels).

Per batch of prompts (:func:`detect`): the prompt tokens (text, then the exemplar tokens),
the fusion encoder, the decoder, the query scores ``sigmoid(logit) * sigmoid(presence)``, and
mask logits for the queries asked for (all of them, or those above a score threshold: the pixel
decoder is skipped for a prompt that keeps none).

Shapes: B prompts, Q queries, E exemplar boxes, P prompt tokens, C channels, h x w the stride-14
grid (L = h*w tokens), masks 4h x 4w.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from .decoder import cxcywh_to_xyxy
from .neck import sine_positions

if TYPE_CHECKING:
    from .model import Sam3Model


@dataclass(frozen=True)
class ImageState:
    """The prompt-independent tensors of one encoded image (``PreparedImage.state``).

    Attributes:
        model: the model that encoded it.
        features: 1 x C x h x w detector features at stride 14.
        extra: the other per-image tensors of :meth:`Sam3Model.encode_image`.
    """

    model: Sam3Model
    features: torch.Tensor
    extra: Mapping[str, torch.Tensor]

    @property
    def grid(self) -> tuple[int, int]:
        return int(self.features.shape[-2]), int(self.features.shape[-1])

    @functools.cached_property
    def positions(self) -> torch.Tensor:
        """1 x C x h x w sine positions of the stride-14 grid."""
        pos = sine_positions(*self.grid, self.features.shape[1], self.features.device)
        return pos.to(self.features.dtype)

    @functools.cached_property
    def tokens(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Image tokens and their positions, each 1 x L x C."""
        image = self.features.flatten(2).transpose(1, 2).contiguous()
        return image, self.positions.flatten(2).transpose(1, 2).contiguous()

    @functools.cached_property
    def fused_start(self) -> torch.Tensor:
        """The fusion encoder's first self-attention, 1 x L x C."""
        with torch.inference_mode():
            return self.model.transformer.encoder.prepare(*self.tokens)

    @functools.cached_property
    def finer(self) -> list[torch.Tensor]:
        """The neck's stride-3.5 and stride-7 levels (1 x C x 4h x 4w, 1 x C x 2h x 2w)."""
        return [self.extra["fpn_0"], self.extra["fpn_1"]]

    @functools.cached_property
    def skips(self) -> list[torch.Tensor]:
        """The pixel decoder's convolutions of the neck levels (coarse first), see
        :meth:`~tijeras.models.sam3.mask_head.PixelDecoder.skip_convs`."""
        with torch.inference_mode():
            return self.model.segmentation_head.pixel_decoder.skip_convs(self.finer)

    @functools.cached_property
    def interactive(self) -> Any:
        """The interactive head's pyramid and its decoder's prompt-independent part."""
        with torch.inference_mode():
            extra = self.model.interactive_features(self.extra["trunk"])
            return self.model.tracker.prepare(extra)


@dataclass(frozen=True)
class Detections:
    """What the detector found for B prompts.

    Attributes:
        scores: B x Q ``sigmoid(logit) * sigmoid(presence)`` of every query.
        logits: B x Q query logits (the dot product with the prompt).
        presence: B x 1 presence logits.
        boxes: B x Q x 4 normalised (0-1) x0, y0, x1, y1.
        masks: B x Q x 4h x 4w mask logits, or for a threshold, one N_b x 4h x 4w tensor per
            prompt holding the kept queries (``keep``) in query order.
        keep: per prompt, the indices of the kept queries (all Q without a threshold).
        semantic: B x 1 x 4h x 4w semantic logits, or None.
    """

    scores: torch.Tensor
    logits: torch.Tensor
    presence: torch.Tensor
    boxes: torch.Tensor
    masks: torch.Tensor | list[torch.Tensor]
    keep: list[torch.Tensor]
    semantic: torch.Tensor | None = None


def prompt_tokens(
    model: Sam3Model,
    state: ImageState,
    text: tuple[str, ...],
    boxes: torch.Tensor | None,
    labels: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The prompt tokens of B prompts: the phrase's tokens, then (with exemplars) the exemplar
    encoder's tokens. ``boxes``: B x E x 4 normalised cxcywh; ``labels``: B x E (1 positive,
    0 negative, -1 padding). Returns B x P x C tokens and B x P valid flags."""
    tokens, valid = model.encode_text(text)
    if boxes is None:
        return tokens, valid
    b = boxes.shape[0]
    if tokens.shape[0] != b:
        tokens, valid = tokens.expand(b, -1, -1), valid.expand(b, -1)
    labels = labels if labels is not None else torch.ones(boxes.shape[:2], device=boxes.device)
    box_valid = labels >= 0
    geo, geo_valid = model.geometry_encoder(
        boxes.to(state.features.dtype),
        labels.clamp(min=0),
        box_valid,
        state.features,
        state.positions,
    )
    return torch.cat([tokens, geo.to(tokens.dtype)], 1), torch.cat([valid, geo_valid], 1)


@torch.inference_mode()
def detect(
    model: Sam3Model,
    state: ImageState,
    tokens: torch.Tensor,
    valid: torch.Tensor,
    threshold: float | None = None,
    semantic: bool = False,
) -> Detections:
    """Run the fusion encoder, decoder, scoring and mask head for B prompts.

    Args:
        tokens: B x P x C prompt tokens, ``valid`` their B x P flags.
        threshold: keep only queries scoring above it (masks of those only); None: all.
        semantic: also return the semantic logits (needs every prompt's pixel decoder).
    """
    pos = state.tokens[1]
    fused = model.transformer.encoder(state.fused_start, pos, tokens, valid)
    queries, boxes, presence = model.transformer.decoder(fused, pos, state.grid, tokens, valid)
    logits = model.dot_prod_scoring(queries, tokens, valid)
    scores = logits.sigmoid() * presence.sigmoid()
    b, q = scores.shape
    if threshold is None:
        keep = [torch.arange(q, device=scores.device)] * b
    else:
        keep = [torch.nonzero(row > threshold).flatten() for row in scores]
    head = model.segmentation_head
    masks: list[torch.Tensor] = []
    semantics = []
    for i in range(b):
        if len(keep[i]) == 0 and not semantic:
            masks.append(scores.new_zeros((0, *(4 * g for g in state.grid))))
            continue
        coarse = head.prompt_map(fused[i : i + 1], state.grid, tokens[i : i + 1], valid[i : i + 1])
        pixels = head.pixel_decoder.forward_split(coarse, state.skips)
        masks.append(head.mask_logits(head.mask_predictor(queries[i, keep[i]]), pixels))
        if semantic:
            semantics.append(head.semantic_seg_head(pixels))
    out_masks: torch.Tensor | list[torch.Tensor] = (
        torch.stack(masks) if threshold is None else masks
    )
    return Detections(
        scores=scores,
        logits=logits,
        presence=presence,
        boxes=cxcywh_to_xyxy(boxes),
        masks=out_masks,
        keep=keep,
        semantic=torch.cat(semantics) if semantic else None,
    )


def normalised_exemplars(boxes: torch.Tensor, size: int) -> torch.Tensor:
    """B x E x 4 xyxy boxes in input pixels -> normalised cxcywh (the exemplar encoder's)."""
    x0, y0, x1, y1 = (boxes.float() / size).unbind(-1)
    return torch.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], dim=-1)


def upscale(low_res: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """N x 4h x 4w logits -> N x H x W logits (bilinear, as both reference processors)."""
    if low_res.shape[0] == 0:
        return low_res.new_zeros((0, *size))
    return F.interpolate(low_res[:, None], size, mode="bilinear", align_corners=False)[:, 0]
