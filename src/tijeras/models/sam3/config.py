"""Typed configurations of SAM 3 (Segment Anything with Concepts): the image model.

Frozen dataclasses, one per component; :class:`Sam3Config` holds them all. ``SAM3`` is the
official model (``sam3.pt``); ``SAM3_TEST_TINY`` keeps every component with a few layers and
narrow widths at 224 px, for tests and benchmarks of the code path rather than of the weights.
Torch-free, so the registry can list the variants without importing a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ViTConfig:
    """The ViT backbone: patch 14, windowed blocks with 2-D RoPE and a few global blocks.

    Attributes:
        image_size: side S of the square input (1008: a 72 x 72 token grid).
        patch_size: pixels per patch side.
        width: channels of the tokens.
        depth: number of blocks.
        heads: attention heads (head width ``width // heads``, a multiple of 4 for 2-D RoPE).
        mlp_dim: hidden width of each block's MLP.
        window_size: side of the attention windows, in tokens.
        global_blocks: indices of the blocks that attend over the whole grid.
        pretrain_image_size: the grid of the learned position embedding (tiled to the input).
        rope_theta: base of the rotary frequencies.
        layer_norm_eps: epsilon of every LayerNorm in the backbone.
    """

    image_size: int = 1008
    patch_size: int = 14
    width: int = 1024
    depth: int = 32
    heads: int = 16
    mlp_dim: int = 4736
    window_size: int = 24
    global_blocks: tuple[int, ...] = (7, 15, 23, 31)
    pretrain_image_size: int = 336
    rope_theta: float = 10000.0
    layer_norm_eps: float = 1e-5

    @property
    def grid(self) -> int:
        """Tokens per side of the input grid."""
        return self.image_size // self.patch_size

    @property
    def pretrain_grid(self) -> int:
        """Tokens per side of the learned position embedding."""
        return self.pretrain_image_size // self.patch_size


@dataclass(frozen=True)
class NeckConfig:
    """The feature pyramid made from the last ViT map (strides 14/4, 14/2, 14 and 28).

    ``scale_factors`` gives one level per entry; the detector uses all but the coarsest, as
    does the interactive head, whose neck (``sam2_convs``) is a second copy with its own weights.
    """

    dim: int = 256
    scale_factors: tuple[float, ...] = (4.0, 2.0, 1.0, 0.5)


@dataclass(frozen=True)
class TextConfig:
    """The CLIP text transformer (causal, pre-norm) and its projection to the model width.

    Attributes:
        vocab_size: BPE vocabulary size (CLIP's 49408).
        context_length: tokens per phrase, start and end tokens included.
        width, depth, heads, mlp_dim: the transformer's sizes.
    """

    vocab_size: int = 49408
    context_length: int = 32
    width: int = 1024
    depth: int = 24
    heads: int = 16
    mlp_dim: int = 4096


@dataclass(frozen=True)
class TransformerConfig:
    """A stack of attention layers of width ``dim`` (geometry encoder, fusion encoder, decoder)."""

    dim: int = 256
    depth: int = 6
    heads: int = 8
    mlp_dim: int = 2048


@dataclass(frozen=True)
class DecoderConfig:
    """The DETR-style decoder: object queries, a presence token and iterative box refinement."""

    dim: int = 256
    depth: int = 6
    heads: int = 8
    mlp_dim: int = 2048
    num_queries: int = 200
    presence_clamp: float = 10.0
    score_clamp: float = 12.0


@dataclass(frozen=True)
class InteractiveConfig:
    """The SAM-style interactive head (points, boxes, masks): SAM 2's prompt encoder and decoder.

    Attributes:
        mask_in_chans: channels of the mask-prompt downscaling.
        transformer_depth, transformer_heads, transformer_mlp_dim: the two-way transformer.
        iou_head_hidden_dim: width of the IoU head.
    """

    mask_in_chans: int = 16
    transformer_depth: int = 2
    transformer_heads: int = 8
    transformer_mlp_dim: int = 2048
    iou_head_hidden_dim: int = 256


@dataclass(frozen=True)
class Sam3Config:
    """A SAM 3 image-model variant.

    Attributes:
        vit, neck, text: the image and text backbones.
        geometry: the exemplar (box) encoder; ``roi_size`` is the side of its RoI pooling.
        encoder: the fusion encoder (image tokens attending to the prompt tokens).
        decoder: the DETR-style decoder.
        mask_upsampling_stages: pixel-decoder stages (one per finer pyramid level).
        mask_heads: heads of the mask head's prompt cross-attention.
        interactive: the point/box head.
        pixel_mean, pixel_std: input normalisation of 0-1 RGB values.
        visual_prompt: the phrase the model gets when only exemplar boxes are given.
    """

    vit: ViTConfig = field(default_factory=ViTConfig)
    neck: NeckConfig = field(default_factory=NeckConfig)
    text: TextConfig = field(default_factory=TextConfig)
    geometry: TransformerConfig = field(default_factory=lambda: TransformerConfig(depth=3))
    roi_size: int = 7
    encoder: TransformerConfig = field(default_factory=TransformerConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    mask_upsampling_stages: int = 3
    mask_heads: int = 8
    interactive: InteractiveConfig = field(default_factory=InteractiveConfig)
    pixel_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    pixel_std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    visual_prompt: str = "visual"

    @property
    def dim(self) -> int:
        """Width of the prompt, fusion and decoder tokens."""
        return self.neck.dim

    @property
    def image_size(self) -> int:
        return self.vit.image_size

    @property
    def grid(self) -> int:
        """Side of the stride-14 feature map (72 at 1008 px)."""
        return self.vit.grid

    @property
    def mask_size(self) -> int:
        """Side of the low-res mask logits (4x the grid: 288 at 1008 px)."""
        return 4 * self.vit.grid

    def __post_init__(self) -> None:
        head = self.vit.width // self.vit.heads
        if head % 4:
            raise ValueError(f"ViT head width {head} must be a multiple of 4 for 2-D RoPE")
        dims = {self.geometry.dim, self.encoder.dim, self.decoder.dim, self.neck.dim}
        if len(dims) != 1:
            raise ValueError(f"prompt, fusion, decoder and neck widths differ: {sorted(dims)}")
        if self.neck.scale_factors[:3] != (4.0, 2.0, 1.0):
            raise ValueError("the neck's first three levels must be at scales 4, 2 and 1")


SAM3 = Sam3Config()
"""The official SAM 3 image model (848M parameters with its interactive head)."""

SAM3_TEST_TINY = Sam3Config(
    vit=ViTConfig(
        image_size=224,
        width=64,
        depth=4,
        heads=4,
        mlp_dim=128,
        window_size=8,
        global_blocks=(1, 3),
        pretrain_image_size=112,
    ),
    neck=NeckConfig(dim=32),
    text=TextConfig(width=64, depth=2, heads=4, mlp_dim=128),
    geometry=TransformerConfig(dim=32, depth=2, heads=4, mlp_dim=64),
    encoder=TransformerConfig(dim=32, depth=2, heads=4, mlp_dim=64),
    decoder=DecoderConfig(dim=32, depth=2, heads=4, mlp_dim=64, num_queries=16),
    mask_heads=4,
    interactive=InteractiveConfig(
        transformer_heads=4, transformer_mlp_dim=64, iou_head_hidden_dim=32
    ),
)
"""Every SAM 3 component with a few layers and narrow widths at 224 px (random weights)."""
