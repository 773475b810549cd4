"""Typed, frozen configurations of the SAM model family.

One dataclass per component; a model variant is a ``SamConfig`` registered under a name in
:mod:`tijeras.models.sam.specs`. No YAML, no import-time side effects.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ViTConfig:
    """The ViT image encoder of SAM (ViTDet-style: windowed blocks plus a few global ones)."""

    embed_dim: int
    depth: int
    num_heads: int
    global_attn_indexes: tuple[int, ...]
    window_size: int = 14
    patch_size: int = 16
    img_size: int = 1024
    mlp_ratio: float = 4.0
    out_chans: int = 256


@dataclass(frozen=True)
class DecoderConfig:
    """The prompt encoder and two-way transformer mask decoder."""

    transformer_depth: int = 2
    transformer_mlp_dim: int = 2048
    transformer_heads: int = 8
    attention_downsample_rate: int = 2
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256
    mask_in_chans: int = 16


@dataclass(frozen=True)
class SamConfig:
    """A complete SAM model: encoder, prompt embedding width, decoder and pixel statistics."""

    encoder: ViTConfig | TinyViTConfig
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    prompt_embed_dim: int = 256
    image_size: int = 1024
    mask_threshold: float = 0.0
    pixel_mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    pixel_std: tuple[float, float, float] = (58.395, 57.12, 57.375)

    @property
    def embedding_size(self) -> int:
        """Side of the square image embedding (64 for a 1024 input and 16-pixel patches)."""
        return self.image_size // self.encoder.patch_size


SAM_VIT_B = SamConfig(
    encoder=ViTConfig(embed_dim=768, depth=12, num_heads=12, global_attn_indexes=(2, 5, 8, 11))
)
SAM_VIT_L = SamConfig(
    encoder=ViTConfig(embed_dim=1024, depth=24, num_heads=16, global_attn_indexes=(5, 11, 17, 23))
)
SAM_VIT_H = SamConfig(
    encoder=ViTConfig(embed_dim=1280, depth=32, num_heads=16, global_attn_indexes=(7, 15, 23, 31))
)
# A tiny random-weight variant with SAM's structure and key names, for fast tests.
SAM_TEST_TINY = SamConfig(
    encoder=ViTConfig(embed_dim=32, depth=2, num_heads=2, global_attn_indexes=(1,), out_chans=32),
    decoder=DecoderConfig(
        transformer_mlp_dim=64, transformer_heads=2, iou_head_hidden_dim=32, mask_in_chans=8
    ),
    prompt_embed_dim=32,
)


@dataclass(frozen=True)
class TinyViTConfig:
    """The TinyViT image encoder of MobileSAM: a convolutional stem, an MBConv stage, then
    windowed-attention stages joined by patch merging, and SAM's neck.

    ``merge_strides`` are the strides of the patch merging after each stage but the last (the
    official model keeps the resolution before its widest stage: strides 2, 2, 1), so the
    embedding grid is ``img_size / (4 * prod(merge_strides))``.
    """

    embed_dims: tuple[int, ...] = (64, 128, 160, 320)
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (2, 4, 5, 10)
    window_sizes: tuple[int, ...] = (7, 7, 14, 7)
    merge_strides: tuple[int, ...] = (2, 2, 1)
    img_size: int = 1024
    mlp_ratio: float = 4.0
    mbconv_expand_ratio: float = 4.0
    local_conv_size: int = 3
    num_classes: int = 1000
    out_chans: int = 256

    @property
    def patch_size(self) -> int:
        """Total stride from the input to the embedding grid (16 for MobileSAM)."""
        stride = 4
        for s in self.merge_strides:
            stride *= s
        return stride


MOBILE_SAM = SamConfig(encoder=TinyViTConfig())
# A tiny random-weight MobileSAM with the official structure and key names, for fast tests.
MOBILE_SAM_TEST_TINY = SamConfig(
    encoder=TinyViTConfig(
        embed_dims=(8, 16, 16, 32),
        depths=(1, 1, 2, 1),
        num_heads=(1, 2, 2, 4),
        window_sizes=(7, 7, 14, 7),
        num_classes=10,
        out_chans=32,
    ),
    decoder=DecoderConfig(
        transformer_mlp_dim=64, transformer_heads=2, iou_head_hidden_dim=32, mask_in_chans=8
    ),
    prompt_embed_dim=32,
)
