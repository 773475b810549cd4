"""The ViT's attention rewrites against the plain computation in float64.

``Attention.attend_qkv`` takes three routes: the fused kernel with a materialised bias (float32
windows), oneDNN's products one head at a time (float32 global blocks) and batched products
with the bias in the product (half precision windows) or added to the scores (half precision
global blocks). Each is held to ``softmax(q k^T / sqrt(d) + bias_h + bias_w) v`` computed in
float64 from the same inputs: float32 within 1e-5 of the output's magnitude, bfloat16 within
3e-2 (the scores are rounded to bfloat16 before the softmax, as under ``torch.autocast``).
"""

from __future__ import annotations

import pytest
import torch

from tijeras.models.sam.image_encoder import Attention, relative_position_table


def _plain(attn: Attention, qkv: torch.Tensor) -> torch.Tensor:
    """The textbook computation in float64."""
    b, h, w, c3 = qkv.shape
    c, heads = c3 // 3, attn.num_heads
    hd = c // heads
    q, k, v = qkv.double().reshape(b, h * w, 3, heads, hd).permute(2, 0, 3, 1, 4).unbind(0)
    rel_h = relative_position_table(h, h, attn.rel_pos_h.double())
    rel_w = relative_position_table(w, w, attn.rel_pos_w.double())
    qr = q.reshape(b, heads, h, w, hd)
    bias = (
        torch.einsum("bnhwc,hkc->bnhwk", qr, rel_h)[..., :, None]
        + torch.einsum("bnhwc,wkc->bnhwk", qr, rel_w)[..., None, :]
    )
    scores = q @ k.transpose(-1, -2) * hd**-0.5 + bias.reshape(b, heads, h * w, h * w)
    out = torch.softmax(scores, dim=-1) @ v
    return out.transpose(1, 2).reshape(b, h, w, c)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("side", [14, 33])  # a window; a global grid of over 1024 tokens
def test_attention_routes_equal_the_plain_computation(dtype, side) -> None:
    gen = torch.Generator().manual_seed(side)
    attn = Attention(128, 2, (side, side))
    with torch.no_grad():
        attn.rel_pos_h.copy_(0.1 * torch.randn(attn.rel_pos_h.shape, generator=gen))
        attn.rel_pos_w.copy_(0.1 * torch.randn(attn.rel_pos_w.shape, generator=gen))
    qkv = torch.randn(3, side, side, 3 * 128, generator=gen)
    expected = _plain(attn, qkv)
    with torch.inference_mode():
        out = attn.to(dtype).attend_qkv(qkv.to(dtype))
    assert out.dtype == dtype
    tolerance = 1e-5 if dtype == torch.float32 else 3e-2
    err = (out.double() - expected).abs().max().item()
    assert err <= tolerance * expected.abs().max().item(), f"{dtype} {side}: off by {err:.3g}"


def test_float32_global_attention_in_uneven_row_blocks(monkeypatch) -> None:
    """float32 global blocks form the scores a few image rows at a time (the budget of
    ``blocks.attention.block_rows``): 7 rows of 33 per block leave a partial last block, and
    the decomposed bias of each block must line up with its rows."""
    from tijeras.models.blocks import attention as attention_module

    monkeypatch.setattr(attention_module, "BLOCK_SCORES", 256 * 33 * 33)
    assert attention_module.block_rows(33 * 33) // 33 == 7
    gen = torch.Generator().manual_seed(5)
    attn = Attention(128, 2, (33, 33))
    with torch.no_grad():
        attn.rel_pos_h.copy_(0.1 * torch.randn(attn.rel_pos_h.shape, generator=gen))
        attn.rel_pos_w.copy_(0.1 * torch.randn(attn.rel_pos_w.shape, generator=gen))
    qkv = torch.randn(2, 33, 33, 3 * 128, generator=gen)
    expected = _plain(attn, qkv)
    with torch.inference_mode():
        out = attn.attend_qkv(qkv)
    err = (out.double() - expected).abs().max().item()
    assert err <= 1e-5 * expected.abs().max().item(), f"off by {err:.3g}"
