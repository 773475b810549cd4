"""The video modules of SAM 2 checkpoints: memory encoder and memory attention.

The image predictor does not use them, but every SAM 2 file carries their weights, so they are
declared here with the checkpoint's names and shapes and the files load strictly.
:class:`MemoryEncoder` is complete (masks and image features to a 64-channel memory).
:class:`MemoryAttention` only declares its parameters for now: its forward pass (rotary
self-attention over frame features and cross-attention to memories) belongs to video support
and raises ``NotImplementedError``.

Shapes: B frames, C = 256 feature channels, M = 64 memory channels, 64 x 64 feature grid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..model.common import LayerNorm2d
from .config import MemoryConfig
from .neck import PositionEmbeddingSine


class MaskDownSampler(nn.Module):
    """Four stride-2 3x3 convolutions (x4 channels each, LayerNorm2d, GELU), then a 1x1."""

    def __init__(self, embed_dim: int = 256, stages: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        chans = 1
        for _ in range(stages):
            out = chans * 4
            layers += [nn.Conv2d(chans, out, 3, stride=2, padding=1), LayerNorm2d(out), nn.GELU()]
            chans = out
        layers.append(nn.Conv2d(chans, embed_dim, kernel_size=1))
        self.encoder = nn.Sequential(*layers)

    def forward(self, masks: torch.Tensor) -> torch.Tensor:
        """B x 1 x 1024 x 1024 -> B x C x 64 x 64."""
        return self.encoder(masks)


class CXBlock(nn.Module):
    """ConvNeXt block: depthwise 7x7, LayerNorm2d, pointwise MLP (x4), layer scale, residual."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = LayerNorm2d(dim)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.dwconv(x)).permute(0, 2, 3, 1)
        y = self.gamma * self.pwconv2(F.gelu(self.pwconv1(y)))
        return x + y.permute(0, 3, 1, 2)


class Fuser(nn.Module):
    """A stack of ConvNeXt blocks."""

    def __init__(self, dim: int, num_layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(CXBlock(dim) for _ in range(num_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class MemoryEncoder(nn.Module):
    """Frame features plus a downsampled mask, fused and projected to the memory width."""

    def __init__(self, config: MemoryConfig, dim: int = 256) -> None:
        super().__init__()
        self.mask_downsampler = MaskDownSampler(dim)
        self.pix_feat_proj = nn.Conv2d(dim, dim, kernel_size=1)
        self.fuser = Fuser(dim, config.fuser_layers)
        self.out_proj = nn.Conv2d(dim, config.mem_dim, kernel_size=1)
        self.position_encoding = PositionEmbeddingSine(config.mem_dim)

    def forward(
        self, pix_feat: torch.Tensor, masks: torch.Tensor, skip_mask_sigmoid: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """B x C x 64 x 64 features, B x 1 x 1024 x 1024 mask logits -> B x M x 64 x 64
        memory features and their 1 x M x 64 x 64 positional encoding."""
        if not skip_mask_sigmoid:
            masks = torch.sigmoid(masks)
        x = self.pix_feat_proj(pix_feat) + self.mask_downsampler(masks)
        x = self.out_proj(self.fuser(x))
        pos = self.position_encoding((x.shape[-2], x.shape[-1]), x.device).to(x.dtype)
        return x, pos


class MemoryProjection(nn.Module):
    """Query/key/value/output projections with keys and values of another width."""

    def __init__(self, dim: int, kv_dim: int) -> None:
        super().__init__()
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(kv_dim, dim)
        self.v_proj = nn.Linear(kv_dim, dim)
        self.out_proj = nn.Linear(dim, dim)


class MemoryAttentionLayer(nn.Module):
    """Self-attention, cross-attention to memories and a ReLU feed-forward (declared only)."""

    def __init__(self, dim: int, mem_dim: int, ffn_dim: int) -> None:
        super().__init__()
        self.self_attn = MemoryProjection(dim, dim)
        self.cross_attn_image = MemoryProjection(dim, mem_dim)
        self.linear1 = nn.Linear(dim, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)


class MemoryAttention(nn.Module):
    """Conditions frame features on memories of past frames (parameters declared only)."""

    def __init__(self, config: MemoryConfig, dim: int = 256) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            MemoryAttentionLayer(dim, config.mem_dim, config.attention_ffn_dim)
            for _ in range(config.attention_layers)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, *args: object, **kwargs: object) -> torch.Tensor:
        raise NotImplementedError("memory attention (video tracking) is not implemented yet")
