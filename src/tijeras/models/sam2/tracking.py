"""SAM 2's per-frame tracking computations, for a video orchestrator to call.

:class:`Sam2Tracking` wraps a :class:`~tijeras.models.sam2.model.Sam2Model` (it is not a
module and holds no video state) and computes, for one frame and a batch of B objects:

1. :meth:`~Sam2Tracking.encode_frame`: the image encoder's top level (tokens and their sine
   encoding) and the projected high-resolution levels, once per frame for every object;
2. :meth:`~Sam2Tracking.condition`: the frame features conditioned on each object's memories
   (memory attention), or with the no-memory embedding on a first prompted frame;
3. :meth:`~Sam2Tracking.decode`: prompt encoder and mask decoder -> mask logits, object score,
   object pointer (with the occlusion path: no object -> the learned no-object pointer);
4. :meth:`~Sam2Tracking.encode_memory`: the frame's memory from its features and chosen mask.

Objects are batched: the image encoder runs once per frame, the memory attention's first
self-attention (which sees only the frame) once for all objects, the memory encoder's
projection of the frame features once. Each object's row is the same function as tracking it
alone.

Shapes: B objects, C = 256 channels, Cm = 64 memory channels, h x w = 64 x 64 feature grid,
L = h * w tokens, S = 1024 model input, low-res masks 4h x 4w = 256 x 256.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from .decoder import select_masks
from .holes import fill_holes_and_sprinkles
from .model import Sam2Model
from .video_config import TrackingConfig

NO_OBJECT_SCORE = -1024.0
"""Logit given to every pixel of an object predicted absent (and of an object not yet seen)."""
HOLE_FILL_VALUE = 0.1
"""Logit given to filled holes: just above the mask threshold."""


@dataclass(frozen=True)
class FrameFeatures:
    """One encoded frame, shared by every object tracked into it.

    Attributes:
        tokens: 1 x L x C top-level features (no memory), channels last.
        pos: 1 x L x C sine encoding of the grid.
        high_res: the projected stride-4 (1 x C/8 x 4h x 4w) and stride-8 (1 x C/4 x 2h x 2w)
            levels the mask decoder adds while upscaling, or None.
        grid: (h, w).
    """

    tokens: torch.Tensor
    pos: torch.Tensor
    high_res: tuple[torch.Tensor, torch.Tensor] | None
    grid: tuple[int, int]

    def nchw(self) -> torch.Tensor:
        """The top-level features as 1 x C x h x w."""
        return self.tokens.transpose(1, 2).unflatten(2, self.grid)


@dataclass(frozen=True)
class MemoryContext:
    """What one object attends on one frame, from its stored results.

    Attributes:
        spatial: (temporal position, 1 x L x Cm stored memory) pairs, conditioning frames first
            (position 0), then the recent frames (positions 1 .. num_maskmem - 1).
        pointers: (encoded distance, 1 x C object pointer) pairs, conditioning frames first.
    """

    spatial: tuple[tuple[int, torch.Tensor], ...]
    pointers: tuple[tuple[int, torch.Tensor], ...]

    @property
    def layout(self) -> tuple[int, int]:
        """(spatial memories, pointers): objects with the same layout are batched."""
        return len(self.spatial), len(self.pointers)


@dataclass(frozen=True)
class HeadOutput:
    """What the heads give for B objects on one frame.

    Attributes:
        low_res: B x 1 x 4h x 4w chosen mask logits, float32 (``NO_OBJECT_SCORE`` everywhere
            when the object is predicted absent).
        high_res: B x 1 x S x S the same, upsampled to the model input (for the memory).
        object_scores: B x 1 logits that the object is present.
        obj_ptr: B x C object pointers (the no-object pointer mixed in where absent).
    """

    low_res: torch.Tensor
    high_res: torch.Tensor
    object_scores: torch.Tensor
    obj_ptr: torch.Tensor


class Sam2Tracking:
    """SAM 2's tracking computations over a model, with the options of a :class:`TrackingConfig`.

    Args:
        model: the SAM 2 model (weights on its device and dtype; not modified).
        config: tracking behaviour (see :func:`~tijeras.models.sam2.video_config.tracking_config`).
    """

    def __init__(self, model: Sam2Model, config: TrackingConfig) -> None:
        if config.num_maskmem != model.config.memory.num_maskmem:
            raise ValueError(
                f"num_maskmem {config.num_maskmem} does not match the model's "
                f"{model.config.memory.num_maskmem} temporal encodings"
            )
        self.model = model
        self.config = config
        self._constants: dict[tuple, torch.Tensor] = {}
        decoder = model.sam_mask_decoder.config
        if config.dynamic_multimask_via_stability is not None:
            decoder = replace(
                decoder, dynamic_multimask_via_stability=config.dynamic_multimask_via_stability
            )
        self.decoder_config = decoder

    # ------------------------------------------------------------------ sizes
    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype

    @property
    def image_size(self) -> int:
        return self.model.config.image_size

    @property
    def low_res_size(self) -> tuple[int, int]:
        side = 4 * self.model.config.embedding_size
        return side, side

    @property
    def memory_dtype(self) -> torch.dtype:
        return getattr(torch, self.config.memory_dtype)

    def use_multimask(self, is_init_cond_frame: bool, num_points: int) -> bool:
        """Whether the heads decode three candidates (and keep the best) for a frame."""
        c = self.config
        return (
            c.multimask_output_in_sam
            and (is_init_cond_frame or c.multimask_output_for_tracking)
            and c.multimask_min_pt_num <= num_points <= c.multimask_max_pt_num
        )

    # ------------------------------------------------------------------ 1. the frame
    @torch.inference_mode()
    def encode_frame(self, image: torch.Tensor) -> FrameFeatures:
        """1 x 3 x S x S normalised frame -> its features."""
        model = self.model
        x = image.to(model.device, model.encoder_dtype)
        top, high_res = model.encode_levels(x)
        _, h, w, c = top.shape
        pos = model.image_encoder.neck.position_encoding((h, w), top.device).to(top.dtype)
        return FrameFeatures(
            tokens=top.reshape(1, h * w, c).to(self.dtype),
            pos=pos.flatten(2).transpose(1, 2).to(self.dtype),
            high_res=high_res,
            grid=(h, w),
        )

    # ------------------------------------------------------------------ 2. memory
    @torch.inference_mode()
    def without_memory(self, features: FrameFeatures, batch: int) -> torch.Tensor:
        """Features of a first prompted frame: the no-memory embedding added. B x C x h x w."""
        x = features.tokens + self.model.no_mem_embed.to(features.tokens.dtype)
        return x.transpose(1, 2).unflatten(2, features.grid).expand(batch, -1, -1, -1)

    @torch.inference_mode()
    def condition(
        self,
        features: FrameFeatures,
        contexts: Sequence[MemoryContext],
        pointer_budget: int,
    ) -> torch.Tensor:
        """Frame features conditioned on each object's memories: B x C x h x w.

        Args:
            features: the frame.
            contexts: one per object, all with the same :attr:`MemoryContext.layout`.
            pointer_budget: frames whose pointers may be attended (normalises distances).
        """
        layouts = {ctx.layout for ctx in contexts}
        if len(layouts) != 1:
            raise ValueError(f"objects batched together need one memory layout, got {layouts}")
        rows = [self._memory_tokens(ctx, pointer_budget) for ctx in contexts]
        memory = torch.stack([r[0] for r in rows])
        memory_pos = torch.stack([r[1] for r in rows])
        num_ptr_tokens = rows[0][2]
        out = self.model.memory_attention(
            features.tokens,
            features.pos,
            memory,
            memory_pos,
            num_obj_ptr_tokens=num_ptr_tokens,
            grid=features.grid,
        )
        return out.transpose(1, 2).unflatten(2, features.grid)

    def _memory_tokens(
        self, ctx: MemoryContext, pointer_budget: int
    ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """One object's memory tokens (N x Cm), their encodings, and the pointer token count."""
        model = self.model
        dtype = self.dtype
        n_mem = self.config.num_maskmem
        spatial_pos = self._memory_grid_encoding()
        tokens, pos = [], []
        for t_pos, mem in ctx.spatial:
            tokens.append(mem[0].to(self.device, dtype))
            pos.append(spatial_pos + model.maskmem_tpos_enc[n_mem - t_pos - 1, 0].to(dtype))
        num_ptr_tokens = 0
        if ctx.pointers:
            ptrs = torch.cat([p for _, p in ctx.pointers]).to(self.device, dtype)  # P x C
            ptr_pos = self.pointer_encoding([d for d, _ in ctx.pointers], pointer_budget)
            c, cm = ptrs.shape[-1], ptr_pos.shape[-1]
            if cm < c:  # a pointer becomes C / Cm tokens of Cm channels
                ptrs = ptrs.reshape(-1, cm)
                ptr_pos = ptr_pos.repeat_interleave(c // cm, dim=0)
            tokens.append(ptrs)
            pos.append(ptr_pos)
            num_ptr_tokens = ptrs.shape[0]
        return torch.cat(tokens), torch.cat(pos), num_ptr_tokens

    def _memory_grid_encoding(self) -> torch.Tensor:
        """L x Cm sine encoding of the memory grid (the same for every memory)."""
        key = ("memory_pos", self.device, self.dtype)
        pos = self._constants.get(key)
        if pos is None:
            grid = (self.model.config.embedding_size,) * 2
            enc = self.model.memory_encoder.position_encoding(grid, self.device)
            pos = enc[0].flatten(1).transpose(0, 1).to(self.dtype).contiguous()
            self._constants[key] = pos
        return pos

    def pointer_encoding(self, distances: Sequence[int], pointer_budget: int) -> torch.Tensor:
        """P x Cm temporal encodings of pointers ``distances`` frames away (zeros for SAM 2.0).

        A 1-D sine encoding of the distance divided by ``pointer_budget - 1``, projected by
        ``obj_ptr_tpos_proj`` where the checkpoint has it.
        """
        model = self.model
        mem_dim = model.config.memory.mem_dim
        if not self.config.add_tpos_enc_to_obj_ptrs:
            return torch.zeros(len(distances), mem_dim, device=self.device, dtype=self.dtype)
        proj = model.config.memory.proj_tpos_enc_in_obj_ptrs
        dim = model.config.hidden_dim if proj else mem_dim
        rel = torch.tensor(list(distances), device=self.device) / max(pointer_budget - 1, 1)
        enc = sine_encoding_1d(rel, dim)
        if proj:
            enc = model.obj_ptr_tpos_proj(enc.to(model.obj_ptr_tpos_proj.weight.dtype))
        return enc.to(self.dtype)

    # ------------------------------------------------------------------ 3. heads
    @torch.inference_mode()
    def decode(
        self,
        pix_feat: torch.Tensor,
        features: FrameFeatures,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        mask_input: torch.Tensor | None,
        multimask: bool,
    ) -> HeadOutput:
        """Prompt encoder and mask decoder on B objects' features.

        Args:
            pix_feat: B x C x h x w (conditioned) features.
            features: the frame (its high-resolution levels).
            points: B x N x 2 points in model-input pixels and B x N labels, or None.
            mask_input: B x 1 x 4h x 4w logits given with the points (a previous prediction),
                or None.
            multimask: decode three candidates and keep the one with the best predicted IoU.
        """
        model = self.model
        b = pix_feat.shape[0]
        if points is None:
            coords = torch.zeros(b, 1, 2, device=self.device)
            labels = -torch.ones(b, 1, dtype=torch.int32, device=self.device)
        else:
            coords, labels = points
        if mask_input is not None and tuple(mask_input.shape[-2:]) != self.low_res_size:
            mask_input = F.interpolate(
                mask_input.float(), self.low_res_size, mode="bilinear", antialias=True
            )
        sparse, dense = model.sam_prompt_encoder(
            points=(coords, labels), boxes=None, masks=mask_input
        )
        masks, iou, tokens, scores = self._decode_all(pix_feat, sparse, dense, features.high_res)
        present = scores > 0
        dec = model.sam_mask_decoder
        rows = torch.arange(b, device=masks.device)
        if multimask:
            masks, iou = masks[:, 1:], iou[:, 1:]
            best = iou.argmax(dim=-1)
            chosen = masks[rows, best].unsqueeze(1)
            # the pointer comes from the chosen candidate's token, or always from token 0
            token = (
                tokens[rows, best + 1]
                if dec.config.use_multimask_token_for_obj_ptr
                else (tokens[:, 0])
            )
        else:
            chosen, _ = select_masks(self.decoder_config, masks, iou, False)
            token = tokens[:, 0]
        low_res = torch.where(present[:, :, None, None], chosen, NO_OBJECT_SCORE).float()
        high_res = self.upsample(low_res)
        obj_ptr = self._pointer(model.obj_ptr_proj(token), present.to(token.dtype))
        return HeadOutput(low_res, high_res, scores.float(), obj_ptr)

    def _decode_all(
        self,
        image: torch.Tensor,
        sparse: torch.Tensor,
        dense: torch.Tensor,
        high_res: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The mask decoder's outputs for all its mask tokens: logits B x M x 4h x 4w,
        IoU B x M, the mask tokens B x M x C (for object pointers), object scores B x 1.

        The function of ``Sam2MaskDecoder.forward`` before its choice of outputs.
        """
        dec = self.model.sam_mask_decoder
        b = image.shape[0]
        tokens = dec.output_tokens(b, sparse)
        src = image + dense
        h, w = src.shape[-2:]
        image_pe = self._dense_pe()
        hs, image_tokens = dec.transformer(src, image_pe, tokens)
        s = dec.num_extra_tokens
        src = image_tokens.transpose(1, 2).reshape(b, -1, h, w)
        upscaled = dec.upscale(src, high_res)
        mask_tokens = hs[:, s : s + dec.num_mask_tokens, :]
        hyper = torch.stack(
            [mlp(mask_tokens[:, i]) for i, mlp in enumerate(dec.output_hypernetworks_mlps)], dim=1
        )
        c = upscaled.shape[1]
        masks = torch.bmm(hyper, upscaled.reshape(b, c, -1)).reshape(b, -1, 4 * h, 4 * w)
        iou = dec.iou_prediction_head(hs[:, s - 1, :])
        return masks, iou, mask_tokens, dec.object_scores(hs)

    def _dense_pe(self) -> torch.Tensor:
        key = ("dense_pe", self.device, self.dtype)
        pe = self._constants.get(key)
        if pe is None:
            pe = self.model.sam_prompt_encoder.get_dense_pe().to(self.dtype)
            self._constants[key] = pe
        return pe

    def _pointer(self, ptr: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Object pointers with the no-object pointer where the object is absent (B x C)."""
        no_obj = self.model.no_obj_ptr.to(ptr.dtype)
        return present * ptr + (1 - present) * no_obj

    def upsample(self, low_res: torch.Tensor) -> torch.Tensor:
        """B x 1 x 4h x 4w logits -> B x 1 x S x S (bilinear)."""
        size = (self.image_size, self.image_size)
        return F.interpolate(low_res, size, mode="bilinear", align_corners=False)

    @torch.inference_mode()
    def mask_as_output(self, features: FrameFeatures, masks: torch.Tensor) -> HeadOutput:
        """A mask prompt taken as the frame's mask (B x 1 x S x S, 0/1).

        Its logits are +-10; the object pointer comes from decoding the mask (downsampled by
        ``mask_downsample``) on the unconditioned features, and the object counts as present
        where the mask has any pixel.
        """
        model = self.model
        masks = masks.float()
        high_res = masks * 20.0 - 10.0
        low_res = F.interpolate(
            high_res, self.low_res_size, mode="bilinear", align_corners=False, antialias=True
        )
        b = masks.shape[0]
        pix = features.nchw().expand(b, -1, -1, -1)
        downsampled = model.mask_downsample(masks.to(model.mask_downsample.weight.dtype))
        decoded = self.decode(pix, features, None, downsampled, multimask=False)
        present = (masks.flatten(1) > 0).any(dim=1, keepdim=True).float()
        scores = present * 20.0 - 10.0
        obj_ptr = self._pointer(decoded.obj_ptr, present.to(decoded.obj_ptr.dtype))
        return HeadOutput(low_res, high_res, scores, obj_ptr)

    # ------------------------------------------------------------------ 4. memory encoder
    @torch.inference_mode()
    def encode_memory(
        self,
        features: FrameFeatures,
        high_res: torch.Tensor,
        object_scores: torch.Tensor,
        from_prompts: bool,
    ) -> torch.Tensor:
        """B objects' memories of a frame: B x L x Cm in the storage dtype.

        Args:
            features: the frame (its unconditioned top level).
            high_res: B x 1 x S x S mask logits.
            object_scores: B x 1; an absent object adds ``no_obj_embed_spatial`` (SAM 2.1).
            from_prompts: the masks answer the user's prompts (thresholded before encoding
                when ``binarize_mask_from_pts_for_mem_enc``).
        """
        model = self.model
        cfg = self.config
        if cfg.binarize_mask_from_pts_for_mem_enc and from_prompts:
            mask = (high_res > 0).float()
        else:
            mask = torch.sigmoid(high_res)
        if cfg.sigmoid_scale_for_mem_enc != 1.0:
            mask = mask * cfg.sigmoid_scale_for_mem_enc
        if cfg.sigmoid_bias_for_mem_enc != 0.0:
            mask = mask + cfg.sigmoid_bias_for_mem_enc
        enc = model.memory_encoder
        pix = features.nchw().to(enc.pix_feat_proj.weight.dtype)
        mem, _ = enc(pix, mask.to(pix.dtype), skip_mask_sigmoid=True)
        if model.config.memory.no_obj_embed_spatial:
            absent = (object_scores <= 0).to(mem.dtype)
            mem = mem + absent[:, :, None, None] * model.no_obj_embed_spatial[0, :, None, None]
        return mem.flatten(2).transpose(1, 2).to(self.memory_dtype)

    # ------------------------------------------------------------------ post-processing
    def fill_holes(self, low_res: torch.Tensor) -> torch.Tensor:
        """Fill background regions of at most ``fill_hole_area`` pixels (8-connected) inside
        B x 1 x 4h x 4w logits with a logit just above the threshold."""
        area = self.config.fill_hole_area
        if area <= 0:
            return low_res
        filled = fill_holes_and_sprinkles(low_res, 0.0, area, 0, hole_value=HOLE_FILL_VALUE)
        return filled.to(low_res.dtype)

    def non_overlapping(self, logits: torch.Tensor) -> torch.Tensor:
        """B x 1 x H x W logits where only the highest object keeps each pixel (others are
        clamped to at most -10)."""
        if logits.shape[0] == 1:
            return logits
        winner = logits.argmax(dim=0, keepdim=True)
        index = torch.arange(logits.shape[0], device=logits.device)[:, None, None, None]
        return torch.where(winner == index, logits, logits.clamp(max=-10.0))


def sine_encoding_1d(
    positions: torch.Tensor, dim: int, temperature: float = 10000.0
) -> torch.Tensor:
    """P positions -> P x dim: sines of the positions over ``dim / 2`` geometric wavelengths,
    then cosines."""
    half = dim // 2
    idx = torch.arange(half, dtype=torch.float32, device=positions.device)
    wavelengths = temperature ** (2 * torch.div(idx, 2, rounding_mode="floor") / half)
    angles = positions.float()[:, None] / wavelengths
    return torch.cat([angles.sin(), angles.cos()], dim=-1)
