"""``dtype="auto"``: the precision a device runs fastest without giving up the masks.

The image encoder is almost all matrix products, which run in bfloat16 faster than in float32
where the hardware has bfloat16 dot products: Intel AMX tiles (``amx_bf16``,
about 5x on the machines measured), AVX-512 BF16 (``avx512_bf16``: Zen 4 and 5, Cooper Lake;
about 1.4x for the ViT-B encoder against oneDNN's float32), and NVIDIA GPUs from Ampere on.
Without them PyTorch emulates bfloat16 through float32 conversions and the encoder gets slower,
so float32 stays. The prompt side always stays in float32: it is a few milliseconds either way,
and a float32 decoder behind a bfloat16 encoder keeps the masks at IoU 0.97-0.99 of full float32
on random test weights (``docs/benchmarks.md``).

The decision is read from the device (CPU flags in ``/proc/cpuinfo``, or the GPU's compute
capability) and costs nothing; :func:`measure_rates` times a matrix product in each dtype for
``tijeras doctor`` to show what the hardware really does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

AUTO = "auto"
# CPU flags (as /proc/cpuinfo names them) worth reporting, in the order shown.
ISA_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "amx_fp16",
)


@dataclass(frozen=True)
class CpuInfo:
    """The CPU's model name and instruction-set flags (empty where they cannot be read)."""

    model: str
    flags: frozenset[str]

    @property
    def isa(self) -> str:
        """The reported flags the CPU has, in :data:`ISA_FLAGS` order (``"-"`` when none)."""
        found = [f for f in ISA_FLAGS if f in self.flags]
        return " ".join(found) if found else "-"


@dataclass(frozen=True)
class Precision:
    """What ``dtype="auto"`` chose for a device, and why.

    Attributes:
        encoder: dtype of the image encoder.
        decoder: dtype of the prompt encoder and mask decoder.
        reason: one line for ``tijeras doctor`` and the page header.
    """

    encoder: torch.dtype
    decoder: torch.dtype
    reason: str

    @property
    def label(self) -> str:
        """``"bfloat16 encoder + float32 decoder"`` or ``"float32"``."""
        enc, dec = _name(self.encoder), _name(self.decoder)
        return enc if enc == dec else f"{enc} encoder + {dec} decoder"


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


@lru_cache(maxsize=1)
def cpu_info(path: str = "/proc/cpuinfo") -> CpuInfo:
    """The first CPU's model name and flags from ``/proc/cpuinfo`` (Linux; elsewhere empty)."""
    import platform

    model, flags = "", frozenset()
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return CpuInfo(platform.processor() or platform.machine(), flags)
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = frozenset(value.split())
        if model and flags:
            break
    return CpuInfo(model or platform.processor() or platform.machine(), flags)


def _cpu_precision(info: CpuInfo) -> Precision:
    if "amx_bf16" in info.flags:
        why = "AMX bf16 tiles: bfloat16 matrix products run several times faster than float32"
        return Precision(torch.bfloat16, torch.float32, why)
    if "avx512_bf16" in info.flags:
        why = "AVX-512 BF16: bfloat16 matrix products run 2-2.5x as fast as float32"
        return Precision(torch.bfloat16, torch.float32, why)
    why = "no bfloat16 dot-product instructions (AMX or AVX-512 BF16): float32 is faster here"
    return Precision(torch.float32, torch.float32, why)


def _cuda_precision(device: torch.device) -> Precision:
    major, minor = torch.cuda.get_device_capability(device)
    name = torch.cuda.get_device_name(device)
    if major >= 8:
        why = f"{name} (compute capability {major}.{minor}): bfloat16 tensor cores"
        return Precision(torch.bfloat16, torch.float32, why)
    why = f"{name} (compute capability {major}.{minor}): no bfloat16 tensor cores"
    return Precision(torch.float32, torch.float32, why)


def choose_precision(device: str | torch.device = "cpu") -> Precision:
    """The encoder and decoder dtypes ``dtype="auto"`` gives on ``device``.

    bfloat16 for the image encoder where the device has bfloat16 matrix hardware (AMX or
    AVX-512 BF16 on a CPU, compute capability 8.0 or later on an NVIDIA GPU), float32
    elsewhere (MPS included); the decoder is float32 everywhere.
    """
    dev = torch.device(device)
    if dev.type == "cuda":
        return _cuda_precision(dev)
    if dev.type == "cpu":
        return _cpu_precision(cpu_info())
    return Precision(torch.float32, torch.float32, f"{dev.type}: float32 (bfloat16 not measured)")


def measure_rates(
    device: str | torch.device = "cpu",
    dtypes: tuple[torch.dtype, ...] = (torch.float32, torch.bfloat16),
    size: tuple[int, int, int] = (4096, 768, 768),
    seconds: float = 0.25,
) -> dict[torch.dtype, float]:
    """Sustained matrix-product rate in GFLOP/s per dtype: (m x k) @ (k x n), repeated for
    about ``seconds`` after a warm-up. The shape is the ViT-B encoder's linear layer."""
    dev = torch.device(device)
    m, k, n = size
    rates = {}
    for dtype in dtypes:
        a = torch.randn(m, k, device=dev).to(dtype)
        b = torch.randn(k, n, device=dev).to(dtype)
        out = torch.empty(m, n, device=dev, dtype=dtype)
        torch.mm(a, b, out=out)
        _sync(dev)
        calls, start = 0, time.perf_counter()
        while True:
            torch.mm(a, b, out=out)
            calls += 1
            if calls % 4 == 0:
                _sync(dev)
                elapsed = time.perf_counter() - start
                if elapsed >= seconds:
                    break
        rates[dtype] = 2.0 * m * k * n * calls / elapsed / 1e9
    return rates


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
