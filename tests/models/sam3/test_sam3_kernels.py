"""SAM 3's inference rewrites, each held to the plain computation it replaces.

- ``blocks.linear``: oneDNN's float32 product (with a fused GELU or ReLU) against ``F.linear``
  in float64, within 1e-5 of the output's magnitude (the same as ``F.linear``'s own error);
  autograd, other dtypes and inputs of fewer than 64 rows take ``F.linear``;
- the pixel decoder split (neck levels convolved once per image, four 2 x 2 convolutions of the
  coarse map per prompt) and the folded instance projection, against the plain modules:
  within 1e-5 of the magnitude (float32 sums in another order).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tijeras.models.blocks.linear import Linear, linear, uses_onednn
from tijeras.models.sam3.mask_head import MaskHead, upsampled_conv


def _close(ours: torch.Tensor, ref: torch.Tensor, rel: float = 1e-5) -> None:
    scale = ref.abs().max().item()
    err = (ours.double() - ref.double()).abs().max().item()
    assert err <= rel * scale, f"max diff {err:.3g} > {rel} x {scale:.3g}"


@pytest.mark.parametrize("activation", ["none", "gelu", "relu"])
@pytest.mark.parametrize("shape", [(7, 64), (130, 64), (2, 33, 64), (0, 64)])
def test_linear_is_f_linear(activation, shape) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=gen)
    w = torch.randn(48, 64, generator=gen) / 8
    b = torch.randn(48, generator=gen)
    with torch.inference_mode():
        ours = linear(x, w, b, activation)
    ref = F.linear(x.double(), w.double(), b.double())
    ref = {"none": ref, "gelu": F.gelu(ref), "relu": F.relu(ref)}[activation]
    assert ours.shape == ref.shape and ours.dtype == torch.float32
    if not ref.numel():
        return
    _close(ours, ref)
    strided, half = x[..., ::2], w[:, :32]  # a strided input and weight, no bias
    with torch.inference_mode():
        _close(linear(strided, half), F.linear(strided.double(), half.double()))


def test_linear_falls_back_where_onednn_does_not_apply() -> None:
    layer = Linear(16, 8)
    x = torch.randn(80, 16, requires_grad=True)
    assert not uses_onednn(x, layer.weight)  # training: autograd through F.linear
    layer(x).sum().backward()
    assert x.grad is not None and layer.weight.grad is not None
    with torch.inference_mode():
        assert uses_onednn(x.detach(), layer.weight) == torch.backends.mkldnn.is_available()
        assert not uses_onednn(x.detach()[:63], layer.weight)  # a few prompt tokens
        if torch.backends.mkldnn.is_available():  # ... unless the weight is large
            big = torch.randn(2048, 256)
            tokens = torch.randn(5, 256)
            assert uses_onednn(tokens, big) and not uses_onednn(tokens[:0], big)
            _close(
                linear(tokens, big, None, "gelu"), F.gelu(F.linear(tokens.double(), big.double()))
            )
        half = layer.to(torch.bfloat16)
        y = half(x.detach().to(torch.bfloat16))
        assert y.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="unknown activation 'tanh'"):
        linear(x, layer.weight, None, "tanh")


@pytest.mark.parametrize("size", [(5, 7), (8, 8), (1, 3)])
def test_upsampled_conv_is_conv_of_nearest_upsampling(size) -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 6, *size, generator=gen)
    w = torch.randn(5, 6, 3, 3, generator=gen)
    ref = F.conv2d(F.interpolate(x.double(), scale_factor=2, mode="nearest"), w.double(), padding=1)
    _close(upsampled_conv(x, w), ref)


def test_split_pixel_decoder_and_folded_instance_head_equal_the_plain_head() -> None:
    torch.manual_seed(2)
    dim, grid = 32, (6, 5)
    head = MaskHead(dim, heads=4, stages=2).eval()
    with torch.no_grad():
        for p in head.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    image = torch.randn(1, grid[0] * grid[1], dim)
    finer = [torch.randn(1, dim, 4 * grid[0], 4 * grid[1]), torch.randn(1, dim, 12, 10)]
    prompt, valid = torch.randn(1, 3, dim), torch.tensor([[True, True, False]])
    queries = torch.randn(7, dim)
    with torch.inference_mode():
        plain = head.pixel_embedding(image, grid, finer, prompt, valid)
        coarse = head.prompt_map(image, grid, prompt, valid)
        split = head.pixel_decoder.forward_split(coarse, head.pixel_decoder.skip_convs(finer))
        _close(split, plain)
        embeddings = head.mask_predictor(queries)
        ref = torch.einsum("qc,chw->qhw", embeddings, head.instance_seg_head(plain)[0])
        _close(head.mask_logits(embeddings, split), ref)


def test_onednn_is_only_given_dense_operands(monkeypatch) -> None:
    """The ViT's queries and keys are permuted views of its fused qkv projection. oneDNN's
    product runs a reference loop on strided operands (over 100 s instead of half a second
    for one 5184-token global block), so ``attention`` and ``linear`` hand it dense copies;
    the result is the same attention."""
    import tijeras.models.blocks.linear as linear_module
    from tijeras.models.blocks.attention import attention

    if linear_module._POINTWISE is None:
        pytest.skip("this PyTorch build has no oneDNN linear")
    seen = []
    real = linear_module._POINTWISE

    def spy(x, weight, *rest):
        seen.append(x.is_contiguous() and weight.is_contiguous())
        return real(x, weight, *rest)

    monkeypatch.setattr(linear_module, "_POINTWISE", spy)
    gen = torch.Generator().manual_seed(0)
    b, n, heads, d = 1, 1100, 2, 16
    qkv = torch.randn(b, n, 3 * heads * d, generator=gen).view(b, n, 3, heads, d)
    q, k, v = (t * 1.0 for t in qkv.permute(2, 0, 3, 1, 4).unbind(0))  # permuted strides
    assert not k.is_contiguous()
    out = attention(q, k, v)
    assert seen and all(seen)
    _close(out, F.scaled_dot_product_attention(q.double(), k.double(), v.double()).float())
    seen.clear()
    x = torch.randn(64, 128, generator=gen).t()  # strided input and weight, 128 rows
    w = torch.randn(48, 128, generator=gen)[:, ::2]
    _close(linear(x, w), F.linear(x.double(), w.double()).float())
    assert seen == [True]


@pytest.mark.parametrize("bias_shape", [(1, 2, 201, 1100), (1, 1, 1, 1100)])
def test_biased_attention_on_onednn_equals_the_fused_kernel(bias_shape) -> None:
    """The decoder's cross-attention to the image tokens adds the box relative-position bias
    (B x H x Q x L) to the scores; on oneDNN's products it is added block by block, full size
    or broadcast, and the result is ``F.scaled_dot_product_attention`` with that bias."""
    from tijeras.models.blocks.attention import attention

    gen = torch.Generator().manual_seed(1)
    q = torch.randn(1, 2, 201, 16, generator=gen)
    k, v = (torch.randn(1, 2, 1100, 16, generator=gen) for _ in range(2))
    bias = 3 * torch.randn(bias_shape, generator=gen)
    ref = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), bias.double())
    _close(attention(q, k, v, bias), ref.float())
    _close(attention(q, k, v, bias.requires_grad_()), ref.float())  # autograd: fused kernel


def test_attention_in_uneven_row_blocks_equals_the_fused_kernel(monkeypatch) -> None:
    """Long queries are split into blocks of whole rows sized by the keys
    (``block_rows``); with a budget of 128 rows, 1300 queries are ten full blocks and a
    partial one, with and without a bias, and the result is the fused kernel's."""
    from tijeras.models.blocks import attention as attention_module

    monkeypatch.setattr(attention_module, "BLOCK_SCORES", 128 * 1100)
    assert attention_module.block_rows(1100) == 128
    gen = torch.Generator().manual_seed(2)
    q = torch.randn(1, 2, 1300, 16, generator=gen)
    k, v = (torch.randn(1, 2, 1100, 16, generator=gen) for _ in range(2))
    bias = 2 * torch.randn(1, 2, 1300, 1100, generator=gen)
    with torch.inference_mode():
        plain = attention_module.attention(q, k, v)
        biased = attention_module.attention(q, k, v, bias)
    _close(plain, F.scaled_dot_product_attention(q.double(), k.double(), v.double()).float())
    ref = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), bias.double())
    _close(biased, ref.float())
