"""Linear layers on oneDNN's matrix products for float32 on the CPU.

PyTorch computes a float32 ``F.linear`` on the CPU with MKL's ``sgemm``, which on AMD
processors runs a 256-bit code path; oneDNN (which PyTorch already uses for its convolutions and
for bfloat16 products) dispatches on the instruction set and runs AVX-512 kernels there. On the
2-core AMD EPYC (Zen 5) of ``docs/benchmarks.md``, ViT-B's (4096 x 768) x (768 x 3072) product
runs at 457 GFLOP/s against MKL's 204 (2 threads), the rate of ONNX Runtime's own kernels. The result is the same function: every output is the same dot
product accumulated in float32 in another order (differences of float rounding, about 1e-6
relative), and an activation fused into the product (``"gelu"``: the exact erf form, ``"relu"``)
is the same elementwise function.

:func:`linear` takes that path for float32 CPU tensors when no gradient is wanted, and
``F.linear`` (plus the activation) everywhere else: other dtypes (bfloat16 already runs on
oneDNN), other devices, training. :class:`Linear` is ``nn.Linear`` with the same parameters
(so checkpoints load unchanged) running through it.

Shapes: ... x K inputs, N x K weights, N biases -> ... x N.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

_ACTIVATIONS = {"none": "", "gelu": "none", "relu": ""}  # oneDNN's attribute -> its algorithm


def _onednn_linear() -> object | None:
    ops = getattr(torch.ops, "mkldnn", None)
    if not torch.backends.mkldnn.is_available() or ops is None:
        return None
    return getattr(ops, "_linear_pointwise", None)


_POINTWISE = _onednn_linear()
ONEDNN = {"enabled": _POINTWISE is not None}
"""Switch for the oneDNN path (off: every product through ``F.linear``, e.g. to count FLOPs,
which ``torch.utils.flop_counter`` does not see in oneDNN's kernels)."""
MIN_ROWS = 64
"""Products with fewer input rows (prompt tokens, heads) stay on ``F.linear`` when their weight
is small (below :data:`MIN_WEIGHT`): oneDNN's per-call cost is larger than the work."""
MIN_WEIGHT = 1 << 19
"""Weights of at least this many elements (2048 x 256: a decoder MLP, a text encoder's layers)
take oneDNN at any number of rows: reading the weight is the work, and MKL's few-row path
reads it at half the speed (1024 x 4096 on 5 rows: 1.19 ms against 0.51 ms on the Zen 5 of
``docs/benchmarks.md``; 256 x 256 on 5 rows: 13 us against 18 us, so those stay)."""


def uses_onednn(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether :func:`linear` runs ``x`` x ``weight`` on oneDNN."""
    return (
        ONEDNN["enabled"]
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        and (x.numel() >= MIN_ROWS * x.shape[-1] or weight.numel() >= MIN_WEIGHT)
        and x.numel() > 0
        and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
        and not torch.compiler.is_compiling()  # graph capture (compile, ONNX export)
        and not torch.jit.is_tracing()
    )


def linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    activation: str = "none",
) -> torch.Tensor:
    """``activation(x @ weight.T + bias)`` with ``activation`` ``"none"``, ``"gelu"`` (erf)
    or ``"relu"``."""
    if activation not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; use one of {sorted(_ACTIVATIONS)}")
    if uses_onednn(x, weight):
        # oneDNN falls back to a reference loop on strided operands (100x slower): dense only
        algorithm = _ACTIVATIONS[activation]
        return _POINTWISE(  # type: ignore[operator]
            x.contiguous(), weight.contiguous(), bias, activation, [], algorithm
        )
    y = F.linear(x, weight, bias)
    if activation == "gelu":
        return F.gelu(y)
    if activation == "relu":
        return F.relu(y)
    return y


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters and state-dict keys) computed by :func:`linear`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)


def measure_rate(
    size: tuple[int, int, int] = (4096, 768, 768), seconds: float = 0.25
) -> float | None:
    """GFLOP/s of the float32 (m x k) x (k x n) product as :func:`linear` runs it on this CPU
    (oneDNN), or None where it takes ``F.linear``."""
    m, k, n = size
    a, w = torch.randn(m, k), torch.randn(n, k)
    with torch.inference_mode():
        if not uses_onednn(a, w):
            return None
        linear(a, w)
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            linear(a, w)
            calls += 1
    return 2.0 * m * k * n * calls / (time.perf_counter() - start) / 1e9
