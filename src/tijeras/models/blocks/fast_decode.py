"""A faster evaluation of the SAM mask decoder, numerically equivalent to ``MaskDecoder.forward``.

Three changes, none of which alters the function computed:

1. **Image-level work is done once per image** (:func:`prepare_image`): the dense positional
   encoding, image tokens plus the no-mask embedding, and the first layer's projections of the
   image tokens (token-to-image keys and values, image-to-token queries). Many prompts then share
   them without copying the image embedding per prompt.
2. **Projections of the 4096 image tokens are reassociated** where only a handful of prompt tokens
   meet them: ``softmax(q (X Wk)^T) (X Wv)`` is evaluated as ``softmax((q Wk) X^T) X Wv`` and
   ``out_proj(softmax(...) V)`` as ``softmax(...) (V Wo)``, which costs (tokens x C) instead of
   (4096 x C) per head.
3. **The output upscaling runs channels-last**: the two stride-2 transposed convolutions are
   matrix products on the last axis, so no layout changes are needed until the final masks.

Shapes: B prompts, T tokens, L = h*w image tokens, C channels, H heads, D = C_internal / H.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .linear import linear
from .mask_decoder import MaskDecoder, rows_needed
from .prompt_encoder import PromptEncoder
from .transformer import Attention, TwoWayAttentionBlock


@dataclass(frozen=True)
class ImageTokens:
    """Per-image tensors shared by every prompt decoded against one image embedding."""

    image: torch.Tensor  # 1 x L x C image embedding tokens
    keys: torch.Tensor  # 1 x L x C image tokens with the no-mask embedding added
    key_pe: torch.Tensor  # 1 x L x C positional encoding
    first_k: torch.Tensor  # H x L x D first layer token-to-image keys
    first_v: torch.Tensor  # H x L x D first layer token-to-image values
    first_q: torch.Tensor  # 1 x H x L x D first layer image-to-token queries
    grid: tuple[int, int]


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """... x N x (H*D) -> ... x H x N x D."""
    *lead, n, d = x.shape
    return x.reshape(*lead, n, heads, d // heads).transpose(-3, -2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    """... x H x N x D -> ... x N x (H*D)."""
    return x.transpose(-3, -2).flatten(-2)


@torch.inference_mode()
def prepare_image(
    decoder: MaskDecoder, prompt_encoder: PromptEncoder, features: torch.Tensor
) -> ImageTokens:
    """Compute the prompt-independent part of the decoder for a 1 x C x h x w embedding."""
    grid = (features.shape[-2], features.shape[-1])
    dense = prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
    # Token-major and contiguous: every per-prompt elementwise op then runs on dense rows.
    image = features.flatten(2).transpose(1, 2).contiguous()
    keys = (features + dense).flatten(2).transpose(1, 2).contiguous()
    key_pe = prompt_encoder.get_dense_pe().to(keys.dtype).flatten(2).transpose(1, 2).contiguous()
    first = decoder.transformer.layers[0]
    t2i, i2t = first.cross_attn_token_to_image, first.cross_attn_image_to_token
    keyed = keys + key_pe
    return ImageTokens(
        image=image,
        keys=keys,
        key_pe=key_pe,
        first_k=_heads(t2i.k_proj(keyed), t2i.num_heads)[0],
        first_v=_heads(t2i.v_proj(keys), t2i.num_heads)[0],
        first_q=_heads(i2t.q_proj(keyed), i2t.num_heads),
        grid=grid,
    )


def _token_to_image(
    attn: Attention,
    q_in: torch.Tensor,
    keys: torch.Tensor,
    key_pe: torch.Tensor,
    keyed: torch.Tensor | None = None,
) -> torch.Tensor:
    """Prompt tokens (B x T x C) attend to image tokens (1|B x L x C), reassociated.

    ``keyed`` is ``keys + key_pe`` when the caller has it already.
    """
    heads = attn.num_heads
    b, t, c = q_in.shape
    q = _heads(attn.q_proj(q_in), heads)  # B x H x T x D
    d = q.shape[-1]
    wk = attn.k_proj.weight.reshape(heads, d, c)
    wv = attn.v_proj.weight.reshape(heads, d, c)
    qk = torch.einsum("bhtd,hdc->bhtc", q, wk).reshape(b, heads * t, c)
    bias = torch.einsum("bhtd,hd->bht", q, attn.k_proj.bias.reshape(heads, d)).reshape(b, -1, 1)
    keyed = keys + key_pe if keyed is None else keyed
    scores = torch.baddbmm(bias, qk, keyed.transpose(1, 2).expand(b, -1, -1))
    probs = torch.softmax(scores * (1.0 / math.sqrt(d)), dim=-1)  # B x HT x L
    mixed = torch.bmm(probs, keys.expand(b, -1, -1)).reshape(b, heads, t, c)
    out = torch.einsum("bhtc,hdc->bhtd", mixed, wv) + attn.v_proj.bias.reshape(heads, 1, d)
    return attn.out_proj(_merge(out))


def _token_to_shared_image(
    attn: Attention, q_in: torch.Tensor, image_k: torch.Tensor, image_v: torch.Tensor
) -> torch.Tensor:
    """Prompt tokens attend to pre-projected image keys/values (H x L x D) shared by all."""
    heads = attn.num_heads
    b, t, _ = q_in.shape
    q = _heads(attn.q_proj(q_in), heads)  # B x H x T x D
    folded = q.transpose(0, 1).reshape(heads, b * t, -1)
    out = F.scaled_dot_product_attention(folded, image_k, image_v)
    return attn.out_proj(_merge(out.reshape(heads, b, t, -1).transpose(0, 1)))


def _image_to_token(attn: Attention, scores: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Mix prompt-token values into image tokens: scores B x H x T x L -> B x L x C.

    Scores are laid out with the few tokens on a middle axis, so the softmax over them runs
    vectorised along the 4096 image positions.
    """
    heads = attn.num_heads
    b, _, t, length = scores.shape
    probs = torch.softmax(scores, dim=2).reshape(b, heads * t, length)
    v = _heads(attn.v_proj(tokens), heads)  # B x H x T x D
    d = v.shape[-1]
    wo = attn.out_proj.weight.t().reshape(heads, d, -1)  # H x D x C
    vo = torch.einsum("bhtd,hdc->bhtc", v, wo).reshape(b, heads * t, -1)
    return torch.baddbmm(attn.out_proj.bias.expand(b, 1, -1), probs.transpose(1, 2), vo)


def _image_queries_scores(
    attn: Attention, keyed: torch.Tensor, token_k: torch.Tensor
) -> torch.Tensor:
    """Scores (B x H x T x L) of image queries from ``keyed`` (1|B x L x C) to token keys."""
    heads = attn.num_heads
    b, _, t, d = token_k.shape
    c = keyed.shape[-1]
    wq = attn.q_proj.weight.reshape(heads, d, c)
    kq = torch.einsum("bhtd,hdc->bhtc", token_k, wq).reshape(b, heads * t, c)
    bias = torch.einsum("bhtd,hd->bht", token_k, attn.q_proj.bias.reshape(heads, d))
    scores = torch.matmul(kq, keyed.transpose(1, 2))  # B x HT x L
    scores = scores.view(b, heads, t, -1) + bias.unsqueeze(-1)
    return scores * (1.0 / math.sqrt(d))


def _block(
    layer: TwoWayAttentionBlock,
    queries: torch.Tensor,
    query_pe: torch.Tensor,
    keys: torch.Tensor,
    key_pe: torch.Tensor,
    prepared: ImageTokens | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    queries = layer.token_self_attention(queries, query_pe)
    t2i = layer.cross_attn_token_to_image
    keyed = None
    if prepared is not None:
        out = _token_to_shared_image(t2i, queries + query_pe, prepared.first_k, prepared.first_v)
    else:
        keyed = keys + key_pe  # used by both cross-attentions of this block
        out = _token_to_image(t2i, queries + query_pe, keys, key_pe, keyed)
    queries = layer.norm2(queries + out)
    queries = layer.norm3(queries + layer.mlp(queries))
    i2t = layer.cross_attn_image_to_token
    token_k = _heads(i2t.k_proj(queries + query_pe), i2t.num_heads)
    if prepared is not None:
        scale = 1.0 / math.sqrt(token_k.shape[-1])
        scores = torch.matmul(token_k, prepared.first_q.transpose(-1, -2)) * scale
    else:
        scores = _image_queries_scores(i2t, keyed, token_k)
    keys = layer.norm4(keys + _image_to_token(i2t, scores, queries))
    return queries, keys


# Token rows of the grid upscaled at a time: 16 rows of a 64-wide grid keep the stride-4
# features of one block (1024 tokens x 16 sub-pixels x 32 channels, 2 MB) in cache between the
# second transposed convolution, its GELU and the hypernetwork product.
UPSCALE_ROWS = 64


def upscale_masks(
    decoder: torch.nn.Module,
    keys: torch.Tensor,
    hyper: torch.Tensor,
    grid: tuple[int, int],
    high_res: tuple[torch.Tensor, torch.Tensor] | None = None,
    region: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Channels-last output upscaling and hypernetwork product -> B x M x 4h x 4w logits.

    ``keys`` is B x L x C (L = h*w tokens), ``hyper`` B x M x C/8. ``high_res`` (SAM 2) holds
    the stride-8 and stride-4 features already laid out in upscaling order (1 x L*4 x C/4 and
    1 x L*16 x C/8, see :mod:`.sam2_fast_decode`); they are added before each GELU.

    ``region`` (rows, cols) limits the work to the top-left token rows and columns: every
    step after the transformer is per token, so the logits there are the same as computed over
    the whole grid, and the rest is filled with the lowest finite value. Callers that only
    upscale the unpadded image pass the tokens it covers.

    On the CPU each prompt is upscaled in blocks of :data:`UPSCALE_ROWS` token rows, so the
    large intermediate features never leave the cache; every block is the same arithmetic as
    the whole-image computation. Other devices take all prompts in one block.
    """
    up1, norm, _, up2, _ = decoder.output_upscaling
    b, (h, w) = keys.shape[0], grid
    rows, cols = (h, w) if region is None else region
    c4, c8, m = up1.out_channels, up2.out_channels, hyper.shape[1]
    # (out, in) layouts for :func:`linear` (oneDNN in float32 on the CPU)
    w1 = up1.weight.permute(0, 2, 3, 1).reshape(up1.in_channels, 4 * c4).t().contiguous()
    w2 = up2.weight.permute(0, 2, 3, 1).reshape(c4, 4 * c8).t().contiguous()
    b1, b2 = up1.bias.repeat(4), up2.bias.repeat(4)
    out = keys.new_empty(b, m, 4 * h, 4 * w)
    if (rows, cols) != (h, w):
        out.fill_(torch.finfo(out.dtype).min)
    tokens = keys.view(b, h, w, -1)
    s1 = s0 = None
    if high_res is not None:
        s1, s0 = high_res[0].view(1, h, w, -1), high_res[1].view(1, h, w, -1)

    def block(p0: int, p1: int, r0: int, r1: int) -> None:
        """Prompts p0:p1, token rows r0:r1 (columns :cols) -> their pixels of ``out``."""
        n = p1 - p0
        y = linear(tokens[p0:p1, r0:r1, :cols].reshape(-1, tokens.shape[-1]), w1, b1)
        y = y.view(n, -1, c4)
        if s1 is not None:
            y += s1[:, r0:r1, :cols].reshape(1, -1, c4)
        y = torch.ops.aten.gelu_(F.layer_norm(y, (c4,), norm.weight, norm.bias, norm.eps))
        z = linear(y.view(-1, c4), w2, b2).view(n, -1, c8)
        if s0 is not None:
            z += s0[:, r0:r1, :cols].reshape(1, -1, c8)
        logits = torch.bmm(torch.ops.aten.gelu_(z), hyper[p0:p1].transpose(1, 2))
        # rows (y, x, dy1, dx1, dy2, dx2) -> mask pixel (4y + 2dy1 + dy2, 4x + 2dx1 + dx2)
        logits = logits.view(n, r1 - r0, cols, 2, 2, 2, 2, m).permute(0, 7, 1, 3, 5, 2, 4, 6)
        target = out[p0:p1, :, 4 * r0 : 4 * r1, : 4 * cols]
        target.view(n, m, r1 - r0, 2, 2, cols, 2, 2).copy_(logits)

    if keys.device.type != "cpu":  # no cache to keep things in: one launch per step instead
        block(0, b, 0, rows)
        return out
    for i in range(b):
        for r0 in range(0, rows, UPSCALE_ROWS):
            block(i, i + 1, r0, min(rows, r0 + UPSCALE_ROWS))
    return out


def image_region(
    input_size: tuple[int, int], image_size: int, low_res: tuple[int, int], grid: tuple[int, int]
) -> tuple[int, int]:
    """Token rows and columns whose low-res logits reach the unpadded ``input_size`` image.

    ``low_res`` is the low-res logits' (h, w), ``grid`` the embedding's; see
    :func:`~tijeras.models.blocks.mask_decoder.rows_needed` for the rows a bilinear upscale
    reads.
    """
    out = []
    for kept, low, g in zip(input_size, low_res, grid):
        needed = rows_needed(low, image_size, int(kept))
        per_token = low // g
        out.append(min(g, -(-needed // per_token)))
    return out[0], out[1]


# Prompts decoded together: larger chunks only add memory traffic (each prompt carries its own
# 4096 x C image tokens and 4h x 4w upscaled features).
CHUNK = 16


@torch.inference_mode()
def decode(
    decoder: MaskDecoder,
    prepared: ImageTokens,
    sparse: torch.Tensor,
    dense: torch.Tensor | None,
    multimask_output: bool,
    region: tuple[int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask logits (B x M x 4h x 4w) and IoU (B x M) for B prompts against a prepared image.

    Args:
        sparse: B x K x C sparse prompt embeddings.
        dense: B x C x h x w mask-prompt embeddings, or None when no mask prompt is given.
        region: token rows and columns to upscale (see :func:`upscale_masks`); all if None.
    """
    step = functools.partial(_decode, region=region)
    return in_chunks(step, decoder, prepared, sparse, dense, multimask_output)


def in_chunks(
    decode_chunk: Callable[..., tuple[torch.Tensor, ...]],
    decoder: torch.nn.Module,
    prepared: object,
    sparse: torch.Tensor,
    dense: torch.Tensor | None,
    multimask_output: bool,
    chunk: int = CHUNK,
) -> tuple[torch.Tensor, ...]:
    """Run ``decode_chunk`` on at most ``chunk`` prompts at a time; concatenate its outputs."""
    b = sparse.shape[0]
    parts = [
        decode_chunk(
            decoder,
            prepared,
            sparse[i : i + chunk],
            None if dense is None else dense[i : i + chunk],
            multimask_output,
        )
        for i in range(0, max(b, 1), chunk)
    ]
    if len(parts) == 1:
        return parts[0]
    return tuple(torch.cat([p[j] for p in parts]) for j in range(len(parts[0])))


def _decode(
    decoder: MaskDecoder,
    prepared: ImageTokens,
    sparse: torch.Tensor,
    dense: torch.Tensor | None,
    multimask_output: bool,
    region: tuple[int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    b = sparse.shape[0]
    tokens = decoder.output_tokens(b, sparse.to(prepared.keys.dtype))
    if dense is None:
        keys, shared = prepared.keys, prepared
    else:
        dense = dense.to(prepared.image.dtype).flatten(2).transpose(1, 2)
        keys, shared = prepared.image + dense, None
    queries = tokens
    for i, layer in enumerate(decoder.transformer.layers):
        queries, keys = _block(
            layer, queries, tokens, keys, prepared.key_pe, shared if i == 0 else None
        )
    final = decoder.transformer.final_attn_token_to_image
    queries = decoder.transformer.norm_final_attn(
        queries + _token_to_image(final, queries + tokens, keys, prepared.key_pe)
    )
    keep = range(1, decoder.num_mask_tokens) if multimask_output else range(1)
    mlps = decoder.output_hypernetworks_mlps
    hyper = torch.stack([mlps[i](queries[:, 1 + i, :]) for i in keep], dim=1)
    masks = upscale_masks(decoder, keys.expand(b, -1, -1), hyper, prepared.grid, region=region)
    iou = decoder.iou_prediction_head(queries[:, 0, :])
    return masks, iou[:, 1:] if multimask_output else iou[:, :1]
