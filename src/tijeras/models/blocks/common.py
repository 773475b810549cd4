"""Small layers shared by the encoders and the decoder."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from .linear import Linear, linear


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of a B x C x H x W tensor."""

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise channels-last so the fused layer_norm kernel does the work.
        y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


class MLPBlock(nn.Module):
    """Two linear layers with an activation between them (``lin1``, ``lin2``); GELU (erf) and
    ReLU are applied inside the first product where :func:`~.linear.linear` can."""

    def __init__(self, dim: int, hidden_dim: int, act: type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.lin1 = Linear(dim, hidden_dim)
        self.lin2 = Linear(hidden_dim, dim)
        self.act = act()
        self._fused = (
            "gelu"
            if isinstance(self.act, nn.GELU) and self.act.approximate == "none"
            else "relu"
            if isinstance(self.act, nn.ReLU)
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._fused is None:
            return self.lin2(self.act(self.lin1(x)))
        hidden = linear(x, self.lin1.weight, self.lin1.bias, self._fused)
        return self.lin2(hidden)


class MLP(nn.Module):
    """``num_layers`` linear layers with ReLU between them (the decoder's heads)."""

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        output_dim: int,
        num_layers: int,
        sigmoid_output: bool = False,
    ) -> None:
        super().__init__()
        dims = [input_dim] + [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(dims))
        self.sigmoid_output = sigmoid_output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = F.relu(x)
        return torch.sigmoid(x) if self.sigmoid_output else x


def encoder_blocks(encoder: nn.Module) -> list[nn.Module]:
    """The repeated blocks of an image encoder, in order, whose completion marks its progress.

    Every module listed in a ``blocks`` list (ViT, Hiera, and each stage of TinyViT), else the
    longest module list of the encoder.
    """
    named = [
        block
        for name, module in encoder.named_modules()
        if name.split(".")[-1] == "blocks" and isinstance(module, nn.ModuleList)
        for block in module
    ]
    if named:
        return named
    lists = [m for m in encoder.modules() if isinstance(m, nn.ModuleList)]
    return list(max(lists, key=len)) if lists else []
