"""The SAM 3 image model: concept prompts (text, exemplar boxes) and SAM 2-style clicks.

Module tree (the official checkpoint's names, without its ``detector.`` prefix)::

    backbone.vision_backbone.trunk        ViT, 1008 px, patch 14, windowed + global, 2-D RoPE
    backbone.vision_backbone.convs        the detector's feature pyramid
    backbone.vision_backbone.sam2_convs   the interactive head's feature pyramid
    backbone.language_backbone            CLIP text encoder + ``resizer`` to 256 channels
    geometry_encoder                      exemplar boxes -> prompt tokens
    transformer.encoder                   fusion encoder (image tokens attend to the prompt)
    transformer.decoder                   DETR-style decoder, presence token, box refinement
    dot_prod_scoring                      query logits against the pooled prompt
    segmentation_head                     MaskFormer-style mask head
    tracker                               SAM 2's prompt encoder and mask decoder

:class:`Sam3Model` implements :class:`tijeras.contract.SegmentationModel`. ``decode`` answers
two kinds of prompt batches:

- **points / boxes / masks** (the interactive head): ``low_res_logits`` B x C x 4h x 4w,
  ``iou_scores`` B x C, ``object_scores`` B x 1, as SAM 2;
- **text / exemplars** (the detector; a batch holding these holds no points, boxes or masks):
  one row per prompt and one column per query (Q = 200): ``low_res_logits`` B x Q x 4h x 4w
  mask logits; ``iou_scores`` B x Q, the score ``sigmoid(logit) * sigmoid(presence)``;
  ``object_scores`` B x 1 presence logits; and in ``extra``: ``"boxes"`` B x Q x 4 (x0, y0, x1,
  y1 in input pixels), ``"pred_logits"`` B x Q, ``"presence_logits"`` B x 1 and, unless
  ``masks_only``, ``"semantic_logits"`` B x 1 x 4h x 4w. The instances are the queries whose
  score is above a threshold (0.5 in Meta's processor); :meth:`Sam3Model.detect` keeps only
  those and computes masks for them alone.

``exemplar_boxes`` are x0, y0, x1, y1 in input pixels; ``exemplar_labels`` 1 (an example), 0 (a
counter-example) or -1 (padding). Without ``text`` the phrase is ``"visual"``, as in Meta's
processor.

Shapes: B prompts, C candidates, Q queries, h x w the stride-14 grid (72 x 72 at 1008 px).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...automatic.options import SAM2_EVERYTHING, EverythingOptions
from ...contract import InputSpec
from ...errors import PromptError
from ...types import Decoded, ImageEmbedding, PreparedImage, PromptBatch
from . import detector
from .config import Sam3Config
from .decoder import Decoder, DotProductScoring
from .fusion import FusionEncoder
from .geometry import GeometryEncoder
from .interactive import InteractiveHead
from .mask_head import MaskHead
from .neck import Pyramid
from .text_encoder import TextEncoder
from .vit import ViT

PROMPT_KINDS = frozenset({"points", "boxes", "masks", "text", "exemplars"})
TEXT_CACHE = 32  # encoded phrases kept


class VisionBackbone(nn.Module):
    """The ViT trunk and its two feature pyramids."""

    def __init__(self, config: Sam3Config) -> None:
        super().__init__()
        self.trunk = ViT(config.vit)
        scales = config.neck.scale_factors
        self.convs = Pyramid(config.vit.width, config.neck.dim, scales)
        self.sam2_convs = Pyramid(config.vit.width, config.neck.dim, scales)


class Backbone(nn.Module):
    """``vision_backbone`` and ``language_backbone``."""

    def __init__(self, config: Sam3Config) -> None:
        super().__init__()
        self.vision_backbone = VisionBackbone(config)
        self.language_backbone = TextEncoder(config.text, config.dim)


class Transformer(nn.Module):
    """The fusion ``encoder`` and the ``decoder``."""

    def __init__(self, config: Sam3Config) -> None:
        super().__init__()
        self.encoder = FusionEncoder(config.encoder)
        self.decoder = Decoder(config.decoder)


class Sam3Model(nn.Module):
    """SAM 3 for images (see the module docstring for what ``decode`` returns)."""

    image_format = "RGB"
    everything_defaults = SAM2_EVERYTHING

    def __init__(self, config: Sam3Config, bpe_path: str | None = None) -> None:
        super().__init__()
        self.config = config
        self.bpe_path = bpe_path
        grid, mask = config.grid, config.mask_size
        self.input_spec = InputSpec(
            image_size=config.image_size,
            resize="square",
            embedding_grid=(grid, grid),
            mask_input_size=(mask, mask),
            prompt_kinds=PROMPT_KINDS,
        )
        self.backbone = Backbone(config)
        self.geometry_encoder = GeometryEncoder(config.geometry, config.roi_size)
        self.transformer = Transformer(config)
        self.dot_prod_scoring = DotProductScoring(config.decoder)
        self.segmentation_head = MaskHead(
            config.dim, config.mask_heads, config.mask_upsampling_stages
        )
        self.tracker = InteractiveHead(config)
        self.register_buffer(
            "pixel_mean", torch.tensor(config.pixel_mean).view(-1, 1, 1), persistent=False
        )
        self.register_buffer(
            "pixel_std", torch.tensor(config.pixel_std).view(-1, 1, 1), persistent=False
        )
        self._tokenizer: Any = None
        self._text_cache: OrderedDict[tuple[str, torch.dtype], tuple] = OrderedDict()

    # ------------------------------------------------ the model contract
    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the prompt side."""
        return self.dot_prod_scoring.hs_proj.weight.dtype

    @property
    def encoder_dtype(self) -> torch.dtype:
        return self.backbone.vision_backbone.trunk.patch_embed.proj.weight.dtype

    @property
    def image_size(self) -> int:
        return self.config.image_size

    def set_decoder_dtype(self, dtype: torch.dtype) -> None:
        """Run everything after the image backbone (text, prompts, heads) in ``dtype``."""
        for module in (
            self.backbone.language_backbone,
            self.geometry_encoder,
            self.transformer,
            self.dot_prod_scoring,
            self.segmentation_head,
            self.tracker,
        ):
            module.to(dtype=dtype)
        self._text_cache.clear()

    def encoder_blocks(self) -> list[nn.Module]:
        return list(self.backbone.vision_backbone.trunk.blocks)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """B x 3 x S x S image of 0-255 values -> normalised with mean 0.5, std 0.5."""
        x = x.to(self.pixel_mean.dtype) / 255.0
        return (x - self.pixel_mean) / self.pixel_std

    @torch.inference_mode()
    def encode_image(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """1 x 3 x S x S normalised -> the 1 x C x h x w detector features and ``extra``:
        ``fpn_0`` (1 x C x 4h x 4w), ``fpn_1`` (1 x C x 2h x 2w) and ``trunk`` (the ViT map,
        1 x W x h x w), from which the interactive head's pyramid is made on its first click."""
        vision = self.backbone.vision_backbone
        trunk = vision.trunk(x.to(self.encoder_dtype)).permute(0, 3, 1, 2)
        levels = [f.to(self.dtype) for f in vision.convs(trunk, 3)]
        return levels[2], {"fpn_0": levels[0], "fpn_1": levels[1], "trunk": trunk}

    def interactive_features(self, trunk: torch.Tensor) -> dict[str, torch.Tensor]:
        """The interactive head's per-image tensors from the 1 x W x h x w ViT map."""
        convs = self.backbone.vision_backbone.sam2_convs
        dtype = convs[0].conv_1x1.weight.dtype
        levels = [f.to(self.dtype) for f in convs(trunk.to(dtype), 3)]
        return self.tracker.image_features(levels)

    def prepare(self, embedding: ImageEmbedding) -> PreparedImage:
        """The image's prompt-independent state (computed lazily, part by part)."""
        features = embedding.features.to(self.dtype)
        extra = {k: v.to(self.dtype) for k, v in embedding.extra.items()}
        return PreparedImage(embedding, detector.ImageState(self, features, extra))

    def decode(
        self,
        prepared: PreparedImage,
        prompts: PromptBatch,
        *,
        multimask: bool,
        masks_only: bool = False,
    ) -> Decoded:
        """Decode B input-frame prompts (see the module docstring for the two layouts)."""
        state: detector.ImageState = prepared.state
        concept = prompts.text is not None or prompts.exemplar_boxes is not None
        if not concept:
            with torch.inference_mode():
                points = None if prompts.points is None else (prompts.points, prompts.labels)
                low, iou, obj = self.tracker.decode(
                    state.interactive, points, prompts.boxes, prompts.masks, multimask
                )
            return Decoded(low, iou, object_scores=obj)
        found = self._detect(state, prompts, None, semantic=not masks_only)
        extra = {
            "boxes": found.boxes * self.config.image_size,
            "pred_logits": found.logits,
            "presence_logits": found.presence,
        }
        if found.semantic is not None:
            extra["semantic_logits"] = found.semantic
        assert isinstance(found.masks, torch.Tensor)
        return Decoded(found.masks, found.scores, object_scores=found.presence, extra=extra)

    def detect(
        self, prepared: PreparedImage, prompts: PromptBatch, threshold: float
    ) -> detector.Detections:
        """The instances of B concept prompts: queries scoring above ``threshold``, with mask
        logits for those only (``masks[b]``: N_b x 4h x 4w; ``keep[b]``: their query indices;
        boxes normalised 0-1)."""
        return self._detect(prepared.state, prompts, threshold, semantic=False)

    def _detect(
        self,
        state: detector.ImageState,
        prompts: PromptBatch,
        threshold: float | None,
        semantic: bool,
    ) -> detector.Detections:
        if prompts.points is not None or prompts.boxes is not None or prompts.masks is not None:
            raise PromptError(
                "SAM 3 answers concept prompts (text, exemplar boxes) and clicks (points, "
                "boxes, masks) separately: give one kind per prompt batch"
            )
        b = len(prompts)
        text = prompts.text if prompts.text is not None else (self.config.visual_prompt,) * b
        boxes = prompts.exemplar_boxes
        if boxes is not None:
            if boxes.ndim != 3 or boxes.shape[-1] != 4:
                raise PromptError(f"exemplar boxes must be B x E x 4, got {tuple(boxes.shape)}")
            boxes = detector.normalised_exemplars(boxes.to(self.device), self.config.image_size)
        labels = prompts.exemplar_labels
        if labels is not None:
            labels = labels.to(self.device)
        with torch.inference_mode():
            tokens, valid = detector.prompt_tokens(self, state, tuple(text), boxes, labels)
            return detector.detect(self, state, tokens, valid, threshold, semantic)

    def postprocess_masks(
        self, low_res: torch.Tensor, input_size: Sequence[int], original_size: Sequence[int]
    ) -> torch.Tensor:
        """B x C x 4h x 4w logits -> B x C x H x W (bilinear, straight to the original size:
        the input square has no padding to remove)."""
        size = (int(original_size[0]), int(original_size[1]))
        return F.interpolate(low_res, size, mode="bilinear", align_corners=False)

    def mask_generator(self, options: EverythingOptions, output_mode: str = "binary_mask") -> Any:
        """Everything mode: a grid of point prompts on the interactive head (SAM 2's options)."""
        from ...automatic.generator import AutoMaskGenerator

        return AutoMaskGenerator(self, options, output_mode=output_mode)

    # ------------------------------------------------ text
    @property
    def tokenizer(self) -> Any:
        """The CLIP tokenizer (built on first use)."""
        if self._tokenizer is None:
            from .tokenizer import ClipTokenizer

            self._tokenizer = ClipTokenizer(self.bpe_path, self.config.text.context_length)
        return self._tokenizer

    @torch.inference_mode()
    def encode_text(self, phrases: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """B phrases -> prompt tokens B x T x C and valid flags B x T (T: the longest phrase's
        token count). Encoded phrases are kept (a few dozen) for the next prompts."""
        rows = [self._encode_phrase(p) for p in phrases]
        t = max(r[0].shape[0] for r in rows)
        dim = rows[0][0].shape[-1]
        tokens = rows[0][0].new_zeros((len(rows), t, dim))
        valid = torch.zeros((len(rows), t), dtype=torch.bool, device=self.device)
        for i, (feat, _) in enumerate(rows):
            tokens[i, : feat.shape[0]] = feat
            valid[i, : feat.shape[0]] = True
        return tokens, valid

    def _encode_phrase(self, phrase: str) -> tuple[torch.Tensor, int]:
        key = (phrase, self.dtype)
        hit = self._text_cache.get(key)
        if hit is not None:
            self._text_cache.move_to_end(key)
            return hit
        ids, valid = self.tokenizer([phrase])
        encoder = self.backbone.language_backbone
        feats, valid = encoder(ids.to(self.device), valid.to(self.device))
        row = (feats[0, : int(valid[0].sum())], int(valid[0].sum()))
        self._text_cache[key] = row
        while len(self._text_cache) > TEXT_CACHE:
            self._text_cache.popitem(last=False)
        return row
