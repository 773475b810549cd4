"""A random-weight ``sam3-test-tiny`` whose concept prompts find instances.

With random weights the presence token is unsure (about 0.45), so no query passes Meta's 0.5
threshold; raising the presence head's output bias makes about half of them pass, so the
paths that make masks for kept queries run.
"""

from __future__ import annotations

import torch

from helpers.parity import perturb


def confident_tiny_sam3(seed: int = 0, presence_bias: float = 5.0) -> torch.nn.Module:
    """``sam3-test-tiny`` with perturbed random weights and a confident presence token."""
    from tijeras.catalog import build_model

    torch.manual_seed(seed)
    model = build_model("sam3-test-tiny")
    perturb(model, seed)
    with torch.no_grad():
        model.transformer.decoder.presence_token_head.layers[-1].bias.add_(presence_bias)
    return model
