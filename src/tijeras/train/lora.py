"""LoRA adapters on the image encoder's attention ``qkv`` projections.

``qkv(x) = x W^T + b + (alpha / r) * (x A^T) B^T`` with A (r x in) initialised like a linear
layer and B (out x r) at zero, so training starts from the unchanged model. Only A and B train.
:func:`merged_state_dict` folds the adapters into ``W`` and returns the plain key names, so a
saved file is an ordinary SAM checkpoint.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update.

    ``weight`` and ``bias`` are the base layer's (code that reads them, such as the windowed
    blocks that pad with the bias, keeps working: the update maps a zero input to zero).
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        if rank < 1:
            raise ValueError(f"LoRA rank must be at least 1, got {rank}")
        self.base = base
        self.rank = rank
        self.scale = alpha / rank
        dev, dtype = base.weight.device, base.weight.dtype
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features, device=dev, dtype=dtype))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, device=dev, dtype=dtype))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        for p in base.parameters():
            p.requires_grad_(False)

    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: ... x in -> ... x out."""
        update = (x @ self.lora_a.t().to(x.dtype)) @ self.lora_b.t().to(x.dtype)
        return self.base(x) + self.scale * update

    def merged_weight(self) -> torch.Tensor:
        """W + (alpha / r) B A, out x in, in float32."""
        delta = self.lora_b.float() @ self.lora_a.float()
        return self.base.weight.float() + self.scale * delta


def add_lora(encoder: nn.Module, rank: int, alpha: float) -> list[nn.Parameter]:
    """Wrap every ``attn.qkv`` linear of a ViT image encoder; return the new parameters.

    Raises:
        ValueError: the encoder has no ``blocks[i].attn.qkv`` linear layers (not a ViT).
    """
    params: list[nn.Parameter] = []
    for block in getattr(encoder, "blocks", []):
        attn = getattr(block, "attn", None)
        qkv = getattr(attn, "qkv", None)
        if isinstance(qkv, nn.Linear):
            wrapped = LoRALinear(qkv, rank, alpha)
            attn.qkv = wrapped
            params += [wrapped.lora_a, wrapped.lora_b]
    if not params:
        raise ValueError("LoRA needs a ViT image encoder with attention qkv layers")
    return params


def has_lora(model: nn.Module) -> bool:
    """Whether any LoRA adapter is attached."""
    return any(isinstance(m, LoRALinear) for m in model.modules())


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapter tensors (for training-state files)."""
    return {k: v for k, v in model.state_dict().items() if ".lora_" in k}


def merged_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state_dict with adapters merged and the plain layer names restored."""
    state = model.state_dict()
    for name, module in model.named_modules():
        if isinstance(module, LoRALinear):
            for key in ("lora_a", "lora_b"):
                state.pop(f"{name}.{key}")
            state.pop(f"{name}.base.weight")
            bias = state.pop(f"{name}.base.bias", None)
            state[f"{name}.weight"] = module.merged_weight().to(module.weight.dtype)
            if bias is not None:
                state[f"{name}.bias"] = bias
    return state
