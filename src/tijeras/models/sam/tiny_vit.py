"""TinyViT, the image encoder of MobileSAM.

A 1024 x 1024 input goes through a convolutional stem (stride 4), a stage of MBConv blocks, then
stages of windowed self-attention with learned per-offset attention biases, a depthwise "local"
convolution and an MLP, joined by convolutional patch merging; SAM's neck maps the last stage to
the 256 x 64 x 64 embedding the mask decoder expects. Parameter names follow the official
checkpoint (``patch_embed.seq``, ``layers.{i}.blocks.{j}``, ``layers.{i}.downsample``, ``neck``)
so its ``image_encoder.*`` weights load as they are.

Between stages the activations stay channels-last (B x H x W x C): the convolutions run on
channels-last views, so no layout copies are made outside the window partition.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..blocks.common import LayerNorm2d
from ..blocks.linear import Linear
from .config import TinyViTConfig
from .image_encoder import window_partition, window_unpartition

# oneDNN's fused CPU kernels (the ones PyTorch's compiler uses): a convolution or linear layer
# with its GELU or residual sum applied while the output is still in cache. Used only for
# inference on the CPU, and switched off for good if a build lacks them.
_FUSION = {"enabled": True}
_FUSED_DTYPES = (torch.float32, torch.bfloat16)


def _fusable(x: torch.Tensor) -> bool:
    return (
        _FUSION["enabled"]
        and x.device.type == "cpu"
        and x.dtype in _FUSED_DTYPES
        and not torch.is_grad_enabled()
        and not torch.compiler.is_compiling()  # graph capture (compile, ONNX export)
    )


def _try_fused(op_name: str, overload: str, *args: object) -> torch.Tensor | None:
    """Call ``torch.ops.mkldnn.<op_name>.<overload>``, or None (and stop trying) if absent."""
    try:
        return getattr(getattr(torch.ops.mkldnn, op_name), overload)(*args)
    except (AttributeError, RuntimeError, NotImplementedError):
        _FUSION["enabled"] = False
        return None


def linear_gelu(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """GELU(x W^T + b) for ... x C_in -> ... x C_out."""
    if _fusable(x):
        out = _try_fused(
            "_linear_pointwise", "default", x, layer.weight, layer.bias, "gelu", [], "none"
        )
        if out is not None:
            return out
    return F.gelu(layer(x))


def linear_add(layer: nn.Linear, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """residual + x W^T + b for ... x C_in -> ... x C_out."""
    if _fusable(x) and residual.shape[:-1] == x.shape[:-1]:
        args = (x, residual.contiguous(), layer.weight, layer.bias, "add")
        out = _try_fused("_linear_pointwise", "binary", *args)
        if out is not None:
            return out
    return residual + layer(x)


class Conv2dBN(nn.Module):
    """A bias-free convolution followed by batch normalisation (``c``, ``bn``).

    In eval mode the normalisation is folded into the convolution's weight and bias (computed
    in float32 on each call, a few thousand elements), so the activations are read once.
    """

    def __init__(
        self,
        in_chans: int,
        out_chans: int,
        kernel_size: int = 1,
        stride: int = 1,
        padding: int = 0,
        groups: int = 1,
    ) -> None:
        super().__init__()
        self.c = nn.Conv2d(
            in_chans, out_chans, kernel_size, stride, padding, groups=groups, bias=False
        )
        self.bn = nn.BatchNorm2d(out_chans)

    def fused(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The eval-mode weight (O x I/g x k x k) and bias (O) of convolution + normalisation."""
        bn = self.bn
        scale = bn.weight.float() * torch.rsqrt(bn.running_var.float() + bn.eps)
        weight = self.c.weight.float() * scale[:, None, None, None]
        bias = bn.bias.float() - bn.running_mean.float() * scale
        dtype = self.c.weight.dtype
        return weight.to(dtype), bias.to(dtype)

    def forward(
        self, x: torch.Tensor, gelu: bool = False, residual: torch.Tensor | None = None
    ) -> torch.Tensor:
        """B x I x H x W -> B x O x H' x W' (any memory format; channels-last stays so).

        Adds ``residual`` (B x O x H' x W') if given, then applies a GELU if ``gelu``.
        """
        if not self.training and _fusable(x):
            out = self._fused_kernel(x, gelu, residual)
            if out is not None:
                return out
        if self.training:
            y = self.bn(self.c(x))
        else:
            weight, bias = self.fused()
            c = self.c
            y = F.conv2d(x, weight, bias, c.stride, c.padding, c.dilation, c.groups)
        if residual is not None:
            y = y + residual
        return F.gelu(y) if gelu else y

    def _fused_kernel(
        self, x: torch.Tensor, gelu: bool, residual: torch.Tensor | None
    ) -> torch.Tensor | None:
        weight, bias = self.fused()
        c = self.c
        conv = (list(c.padding), list(c.stride), list(c.dilation), c.groups)
        if residual is None:
            attr = ("gelu", [], "none") if gelu else ("none", [], "")
            return _try_fused("_convolution_pointwise", "default", x, weight, bias, *conv, *attr)
        args = (x, residual, weight, bias, *conv, "add", 1.0, None, [], None)
        out = _try_fused("_convolution_pointwise", "binary", *args)
        return F.gelu(out) if out is not None and gelu else out


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expansion, 3x3 depthwise, 1x1 projection, GELUs."""

    def __init__(self, dim: int, expand_ratio: float) -> None:
        super().__init__()
        hidden = int(dim * expand_ratio)
        self.conv1 = Conv2dBN(dim, hidden)
        self.conv2 = Conv2dBN(hidden, hidden, 3, 1, 1, groups=hidden)
        self.conv3 = Conv2dBN(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B x C x H x W -> B x C x H x W."""
        y = self.conv2(self.conv1(x, gelu=True), gelu=True)
        return self.conv3(y, gelu=True, residual=x)


class PatchMerging(nn.Module):
    """1x1 widening, strided 3x3 depthwise and 1x1 convolutions with GELUs between them."""

    def __init__(self, dim: int, out_dim: int, stride: int) -> None:
        super().__init__()
        self.conv1 = Conv2dBN(dim, out_dim)
        self.conv2 = Conv2dBN(out_dim, out_dim, 3, stride, 1, groups=out_dim)
        self.conv3 = Conv2dBN(out_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B x C x H x W -> B x C' x H/s x W/s."""
        return self.conv3(self.conv2(self.conv1(x, gelu=True), gelu=True))


def offset_index(window: int) -> torch.Tensor:
    """N x N (N = window^2) index of the bias of each (query, key) pair in a window.

    Pairs share a bias when their absolute row and column offsets (dy, dx) are equal; the bias
    of offset (dy, dx) is column ``dy * window + dx`` of the learned table.
    """
    pos = torch.arange(window)
    rows = pos.repeat_interleave(window)
    cols = pos.repeat(window)
    dy = (rows[:, None] - rows[None, :]).abs()
    dx = (cols[:, None] - cols[None, :]).abs()
    return dy * window + dx


class Attention(nn.Module):
    """Multi-head attention inside a window, with a learned bias per head and offset.

    The projection packs each head's query, key and value together (heads x 3 x head_dim).
    """

    def __init__(self, dim: int, num_heads: int, window: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = Linear(dim, 3 * self.head_dim * num_heads)
        self.proj = Linear(self.head_dim * num_heads, dim)
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, window * window))
        self.register_buffer("attention_bias_idxs", offset_index(window), persistent=False)
        self._bias: torch.Tensor | None = None
        self._bias_key: tuple | None = None

    def bias(self, dtype: torch.dtype) -> torch.Tensor:
        """1 x heads x N x N additive attention mask, gathered once per weights/dtype in eval.

        The cache is keyed on the table's storage and version counter, so loading weights or
        converting the model gathers again.
        """
        table = self.attention_biases
        if self.training or torch.compiler.is_compiling():
            return table[:, self.attention_bias_idxs].to(dtype)[None]
        key = (table.data_ptr(), table._version, table.device, dtype)
        if self._bias is None or self._bias_key != key:
            with torch.no_grad():
                self._bias = table[:, self.attention_bias_idxs].to(dtype)[None]
            self._bias_key = key
        return self._bias

    def attend(self, qkv: torch.Tensor) -> torch.Tensor:
        """Projected windows (B' x N x heads * 3 * head_dim) -> B' x N x heads * head_dim,
        before the output projection."""
        bw, n, _ = qkv.shape
        hd = self.head_dim
        q, k, v = qkv.view(bw, n, self.num_heads, 3 * hd).transpose(1, 2).split(hd, dim=-1)
        # A 4-d mask (broadcast over windows by a stride-0 expand) keeps PyTorch's fused CPU
        # kernel; a 3-d one falls back to the unfused path.
        mask = self.bias(q.dtype).expand(bw, -1, -1, -1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return out.transpose(1, 2).reshape(bw, n, self.num_heads * hd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One window batch: B' x N x C -> B' x N x C (N = window^2)."""
        return self.proj(self.attend(self.qkv(self.norm(x))))


class Mlp(nn.Module):
    """Pre-normalised two-layer MLP with GELU (``norm``, ``fc1``, ``fc2``)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = Linear(dim, hidden)
        self.fc2 = Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(linear_gelu(self.fc1, self.norm(x)))


class TinyViTBlock(nn.Module):
    """Windowed attention (zero-padded to whole windows), depthwise local conv, MLP."""

    def __init__(
        self, dim: int, num_heads: int, window: int, mlp_ratio: float, local_conv: int
    ) -> None:
        super().__init__()
        self.window = window
        self.attn = Attention(dim, num_heads, window)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        pad = local_conv // 2
        self.local_conv = Conv2dBN(dim, dim, local_conv, 1, pad, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B x H x W x C -> B x H x W x C."""
        x = linear_add(self.attn.proj, self._windowed_attention(x), x)
        x = self.local_conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        mlp = self.mlp
        return linear_add(mlp.fc2, linear_gelu(mlp.fc1, mlp.norm(x)), x)

    def _windowed_attention(self, x: torch.Tensor) -> torch.Tensor:
        """B x H x W x C -> attention outputs before the projection, B x H x W x C.

        The padding tokens are zero before the norm, so after norm and projection they are all
        the projection of the norm's bias: only the real tokens are projected and the windows
        are padded with that vector.
        """
        attn, ws = self.attn, self.window
        _, h, w, _ = x.shape
        qkv = attn.qkv(attn.norm(x))
        fill = F.linear(attn.norm.bias, attn.qkv.weight, attn.qkv.bias)
        windows, padded = window_partition(qkv, ws, fill=fill)
        out = attn.attend(windows.view(windows.shape[0], ws * ws, -1))
        return window_unpartition(out.view(-1, ws, ws, out.shape[-1]), ws, padded, (h, w))


class Stage(nn.Module):
    """A stage's blocks followed by the patch merging into the next stage (``downsample``)."""

    def __init__(self, blocks: list[nn.Module], downsample: PatchMerging | None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.downsample = downsample


class PatchEmbed(nn.Module):
    """Two stride-2 3x3 convolutions with a GELU between them (``seq.0``, ``seq.2``)."""

    def __init__(self, in_chans: int, dim: int) -> None:
        super().__init__()
        self.seq = nn.Sequential(
            Conv2dBN(in_chans, dim // 2, 3, 2, 1), nn.GELU(), Conv2dBN(dim // 2, dim, 3, 2, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B x 3 x H x W -> B x dim x H/4 x W/4."""
        return self.seq[2](self.seq[0](x, gelu=True))


class TinyViT(nn.Module):
    """B x 3 x S x S normalised, padded images -> B x out_chans x S/16 x S/16 embeddings."""

    def __init__(self, config: TinyViTConfig) -> None:
        super().__init__()
        self.img_size = config.img_size
        dims = config.embed_dims
        self.patch_embed = PatchEmbed(3, dims[0])
        stages = []
        for i, dim in enumerate(dims):
            merge = None
            if i + 1 < len(dims):
                merge = PatchMerging(dim, dims[i + 1], config.merge_strides[i])
            stages.append(Stage(self._blocks(config, i), merge))
        self.layers = nn.ModuleList(stages)
        self.norm_head = nn.LayerNorm(dims[-1])  # classification head, unused by SAM
        self.head = nn.Linear(dims[-1], config.num_classes)
        out = config.out_chans
        self.neck = nn.Sequential(
            nn.Conv2d(dims[-1], out, kernel_size=1, bias=False),
            LayerNorm2d(out),
            nn.Conv2d(out, out, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(out),
        )

    @staticmethod
    def _blocks(config: TinyViTConfig, i: int) -> list[nn.Module]:
        dim, depth = config.embed_dims[i], config.depths[i]
        if i == 0:
            return [MBConv(dim, config.mbconv_expand_ratio) for _ in range(depth)]
        return [
            TinyViTBlock(
                dim,
                config.num_heads[i],
                config.window_sizes[i],
                config.mlp_ratio,
                config.local_conv_size,
            )
            for _ in range(depth)
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B x 3 x S x S -> B x out_chans x S/16 x S/16."""
        # Channels-last convolutions are several times faster on CPU (the depthwise ones most).
        x = self.patch_embed(x.contiguous(memory_format=torch.channels_last))
        first = self.layers[0]
        for block in first.blocks:
            x = block(x)
        x = first.downsample(x).permute(0, 2, 3, 1)  # B x H x W x C from here on
        for stage in self.layers[1:]:
            for block in stage.blocks:
                x = block(x)
            if stage.downsample is not None:
                x = stage.downsample(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return self.neck(x.permute(0, 3, 1, 2))
