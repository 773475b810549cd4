"""A faster evaluation of the SAM 2 mask decoder, the same function as
``Sam2MaskDecoder.forward``.

It reuses the rewrites of :mod:`.fast_decode` (image-level work once per image,
reassociated token/image attention) and adds SAM 2's high-resolution path to the channels-last
output upscaling: the projected stride-8 and stride-4 features are laid out once per image in
the order of the transposed convolutions' outputs (token, 2 x 2 sub-pixel, channel), so each
prompt adds them with a plain elementwise sum.

Shapes: B prompts, T tokens, L = h*w image tokens, C channels, M mask tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import fast_decode as sam_fast
from .prompt_encoder import PromptEncoder
from .sam2_decoder import Sam2MaskDecoder, select_masks

CHUNK = 16  # prompts decoded together


@dataclass(frozen=True)
class Sam2ImageTokens:
    """Per-image tensors shared by every prompt decoded against one image."""

    base: sam_fast.ImageTokens
    s1: torch.Tensor | None  # 1 x (h*w*4) x C/4: stride-8 features in upscaling order
    s0: torch.Tensor | None  # 1 x (h*w*16) x C/8: stride-4 features in upscaling order


@torch.inference_mode()
def prepare_image(
    decoder: Sam2MaskDecoder,
    prompt_encoder: PromptEncoder,
    features: torch.Tensor,
    high_res: tuple[torch.Tensor, torch.Tensor] | None,
) -> Sam2ImageTokens:
    """The prompt-independent part for a 1 x C x h x w embedding and its high-res levels."""
    base = sam_fast.prepare_image(decoder, prompt_encoder, features)
    if high_res is None:
        return Sam2ImageTokens(base, None, None)
    h, w = base.grid
    feat_s0, feat_s1 = high_res
    c4, c8 = feat_s1.shape[1], feat_s0.shape[1]
    s1 = feat_s1.permute(0, 2, 3, 1).reshape(1, h, 2, w, 2, c4).permute(0, 1, 3, 2, 4, 5)
    s0 = feat_s0.permute(0, 2, 3, 1).reshape(1, h, 2, 2, w, 2, 2, c8)
    s0 = s0.permute(0, 1, 4, 2, 5, 3, 6, 7)
    dtype = base.keys.dtype
    return Sam2ImageTokens(
        base,
        s1.reshape(1, h * w * 4, c4).to(dtype).contiguous(),
        s0.reshape(1, h * w * 16, c8).to(dtype).contiguous(),
    )


@torch.inference_mode()
def decode(
    decoder: Sam2MaskDecoder,
    prepared: Sam2ImageTokens,
    sparse: torch.Tensor,
    dense: torch.Tensor | None,
    multimask_output: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mask logits (B x (3|1) x 4h x 4w), IoU (B x (3|1)) and object scores (B x 1).

    Args:
        sparse: B x K x C sparse prompt embeddings.
        dense: B x C x h x w mask-prompt embeddings, or None when no mask prompt is given.
    """
    return sam_fast.in_chunks(  # type: ignore[return-value]
        _decode, decoder, prepared, sparse, dense, multimask_output, CHUNK
    )


def _decode(
    decoder: Sam2MaskDecoder,
    prepared: Sam2ImageTokens,
    sparse: torch.Tensor,
    dense: torch.Tensor | None,
    multimask_output: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    base = prepared.base
    b = sparse.shape[0]
    tokens = decoder.output_tokens(b, sparse.to(base.keys.dtype))
    if dense is None:
        keys, shared = base.keys, base
    else:
        dense = dense.to(base.image.dtype).flatten(2).transpose(1, 2)
        keys, shared = base.image + dense, None
    queries = tokens
    for i, layer in enumerate(decoder.transformer.layers):
        queries, keys = sam_fast._block(
            layer, queries, tokens, keys, base.key_pe, shared if i == 0 else None
        )
    final = decoder.transformer.final_attn_token_to_image
    queries = decoder.transformer.norm_final_attn(
        queries + sam_fast._token_to_image(final, queries + tokens, keys, base.key_pe)
    )
    s = decoder.num_extra_tokens
    dynamic = decoder.config.dynamic_multimask_via_stability
    keep = range(1, decoder.num_mask_tokens) if multimask_output else range(1)
    if not multimask_output and dynamic:
        keep = range(decoder.num_mask_tokens)
    mlps = decoder.output_hypernetworks_mlps
    hyper = torch.stack([mlps[i](queries[:, s + i, :]) for i in keep], dim=1)
    high_res = None if prepared.s1 is None else (prepared.s1, prepared.s0)
    masks = sam_fast.upscale_masks(decoder, keys.expand(b, -1, -1), hyper, base.grid, high_res)
    iou = decoder.iou_prediction_head(queries[:, s - 1, :])
    if multimask_output:
        iou = iou[:, 1:]
    elif dynamic:
        masks, iou = select_masks(decoder.config, masks, iou, False)
    else:
        iou = iou[:, :1]
    return masks, iou, decoder.object_scores(queries)
