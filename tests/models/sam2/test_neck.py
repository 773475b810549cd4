"""The FPN neck's projected levels: one composed product equals the lateral then the projection."""

from __future__ import annotations

import pytest
import torch

from tijeras.models.sam2.config import NeckConfig
from tijeras.models.sam2.neck import FpnNeck


def _levels(channels: tuple[int, ...], size: int = 32) -> list[torch.Tensor]:
    """Channels-last maps at strides 1, 2, 4, 8 of a ``size`` grid (finest first)."""
    return [torch.randn(1, size >> i, size >> i, c) for i, c in enumerate(reversed(channels))]


@pytest.mark.parametrize("fused", [(2, 3), (0, 1, 2, 3), (1, 2, 3), (0, 2, 3)])
def test_projected_levels_equal_the_lateral_then_the_projection(fused: tuple[int, ...]) -> None:
    # (2, 3), every SAM 2 config: levels 0 and 1 are laterals alone and compose. (0, 1, 2, 3):
    # neither does. (1, 2, 3): level 1 is fused (projected after), level 0 composes. (0, 2, 3):
    # level 1 is unfused but feeds level 0's fusion, so neither composes.
    torch.manual_seed(0)
    channels = (96, 48, 24, 12)  # backbone_channel_list: coarsest first
    neck = FpnNeck(NeckConfig(d_model=32, fpn_top_down_levels=fused), channels).eval()
    for p in neck.parameters():
        p.data.normal_(0, 0.2)
    xs = _levels(channels)
    projections = {
        0: (torch.randn(8, 32), torch.randn(8)),
        1: (torch.randn(16, 32), torch.randn(16)),
    }
    with torch.inference_mode():
        plain = neck(xs)
        projected = neck(xs, projections)
    for level in (2, 3):
        torch.testing.assert_close(projected[level], plain[level], rtol=0, atol=0)
    for level, (weight, bias) in projections.items():
        expected = plain[level] @ weight.T + bias
        assert projected[level].shape == (*plain[level].shape[:-1], weight.shape[0])
        torch.testing.assert_close(projected[level], expected, rtol=1e-5, atol=1e-5)


def test_projection_in_another_dtype_casts_the_level() -> None:
    torch.manual_seed(1)
    channels = (64, 32, 16, 8)
    neck = FpnNeck(NeckConfig(d_model=32), channels).eval()
    xs = _levels(channels, 16)
    weight, bias = torch.randn(8, 32, dtype=torch.float64), torch.randn(8, dtype=torch.float64)
    with torch.inference_mode():
        projected = neck(xs, {0: (weight, bias)})[0]
        expected = neck(xs)[0].double() @ weight.T + bias
    assert projected.dtype == torch.float64
    torch.testing.assert_close(projected, expected, rtol=1e-5, atol=1e-5)
