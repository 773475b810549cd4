"""Typed configurations of the SAM 2 and SAM 2.1 image models (Hiera tiny, small, base+, large).

Each variant is a frozen dataclass: the Hiera trunk, the FPN neck, the mask decoder options and
the sizes of the video modules the checkpoints carry. Versions differ only in the video modules:
SAM 2.1 adds ``no_obj_embed_spatial`` and the ``obj_ptr_tpos_proj`` projection.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..blocks.sam2_config import Sam2DecoderConfig


@dataclass(frozen=True)
class HieraConfig:
    """The hierarchical trunk: four stages, the channels and heads doubling at each stage."""

    embed_dim: int = 96
    num_heads: int = 1
    stages: tuple[int, ...] = (1, 2, 7, 2)
    global_att_blocks: tuple[int, ...] = (5, 7, 9)
    window_spec: tuple[int, ...] = (8, 4, 14, 7)
    window_pos_embed_bkg_spatial_size: tuple[int, int] = (7, 7)
    q_pool: int = 3
    q_stride: tuple[int, int] = (2, 2)
    dim_mul: float = 2.0
    head_mul: float = 2.0
    mlp_ratio: float = 4.0

    @property
    def stage_ends(self) -> tuple[int, ...]:
        """Index of the last block of each stage."""
        return tuple(sum(self.stages[: i + 1]) - 1 for i in range(len(self.stages)))

    @property
    def channel_list(self) -> tuple[int, ...]:
        """Output channels per stage, lowest resolution first (as the neck lists them)."""
        dims = [int(self.embed_dim * self.dim_mul**i) for i in range(len(self.stages))]
        return tuple(reversed(dims))


@dataclass(frozen=True)
class NeckConfig:
    """The FPN neck: 1x1 lateral convolutions to ``d_model`` and top-down fusion."""

    d_model: int = 256
    fpn_top_down_levels: tuple[int, ...] = (2, 3)
    fpn_interp_model: str = "nearest"
    scalp: int = 1  # lowest-resolution levels dropped after the neck


@dataclass(frozen=True)
class MemoryConfig:
    """Sizes of the video modules (memory attention, memory encoder, object pointers)."""

    num_maskmem: int = 7
    mem_dim: int = 64
    attention_layers: int = 4
    attention_ffn_dim: int = 2048
    fuser_layers: int = 2
    no_obj_embed_spatial: bool = True  # SAM 2.1
    proj_tpos_enc_in_obj_ptrs: bool = True  # SAM 2.1
    use_mlp_for_obj_ptr_proj: bool = True


@dataclass(frozen=True)
class Sam2Config:
    """A SAM 2 / SAM 2.1 variant."""

    version: str
    trunk: HieraConfig
    neck: NeckConfig = field(default_factory=NeckConfig)
    decoder: Sam2DecoderConfig = field(default_factory=Sam2DecoderConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    image_size: int = 1024
    backbone_stride: int = 16
    mask_threshold: float = 0.0
    pixel_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    pixel_std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    @property
    def hidden_dim(self) -> int:
        return self.neck.d_model

    @property
    def embedding_size(self) -> int:
        return self.image_size // self.backbone_stride


HIERA_TINY = HieraConfig(
    embed_dim=96, num_heads=1, stages=(1, 2, 7, 2), global_att_blocks=(5, 7, 9)
)
HIERA_SMALL = HieraConfig(
    embed_dim=96, num_heads=1, stages=(1, 2, 11, 2), global_att_blocks=(7, 10, 13)
)
HIERA_BASE_PLUS = HieraConfig(
    embed_dim=112,
    num_heads=2,
    stages=(2, 3, 16, 3),
    global_att_blocks=(12, 16, 20),
    window_pos_embed_bkg_spatial_size=(14, 14),
)
HIERA_LARGE = HieraConfig(
    embed_dim=144,
    num_heads=2,
    stages=(2, 6, 36, 4),
    global_att_blocks=(23, 33, 43),
    window_spec=(8, 4, 16, 8),
)

_SAM2_0_MEMORY = MemoryConfig(no_obj_embed_spatial=False, proj_tpos_enc_in_obj_ptrs=False)

SAM2_1_HIERA_TINY = Sam2Config(version="2.1", trunk=HIERA_TINY)
SAM2_1_HIERA_SMALL = Sam2Config(version="2.1", trunk=HIERA_SMALL)
SAM2_1_HIERA_BASE_PLUS = Sam2Config(version="2.1", trunk=HIERA_BASE_PLUS)
SAM2_1_HIERA_LARGE = Sam2Config(version="2.1", trunk=HIERA_LARGE)
SAM2_HIERA_TINY = replace(SAM2_1_HIERA_TINY, version="2.0", memory=_SAM2_0_MEMORY)
SAM2_HIERA_SMALL = replace(SAM2_1_HIERA_SMALL, version="2.0", memory=_SAM2_0_MEMORY)
SAM2_HIERA_BASE_PLUS = replace(SAM2_1_HIERA_BASE_PLUS, version="2.0", memory=_SAM2_0_MEMORY)
SAM2_HIERA_LARGE = replace(SAM2_1_HIERA_LARGE, version="2.0", memory=_SAM2_0_MEMORY)
# every module of SAM 2.1 at toy sizes (a 128 x 128 input), random weights: for tests
SAM2_TEST_TINY = replace(
    SAM2_1_HIERA_TINY,
    image_size=128,
    trunk=replace(HIERA_TINY, embed_dim=32, stages=(1, 1, 2, 1), global_att_blocks=(3,)),
    memory=replace(SAM2_1_HIERA_TINY.memory, attention_layers=2, attention_ffn_dim=256),
)
