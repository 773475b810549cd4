"""Devices named by users, checked before any model is built on them."""

from __future__ import annotations

import torch

from ..errors import TijerasError


def resolve_device(device: str | torch.device) -> torch.device:
    """``device`` as a ``torch.device``; a CUDA device on a machine without one raises.

    No silent fallback to the CPU: a run that asked for a GPU and got the CPU would be slower
    than the user planned for, with nothing to say why.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise TijerasError(
            f"device {str(device)!r} is not a device name (try cpu, cuda, cuda:1 or mps)"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise TijerasError(
                f"device {str(device)!r}: CUDA is not available on this machine "
                f"(torch {torch.__version__}); use device='cpu'"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise TijerasError(
                f"device {str(device)!r}: only {torch.cuda.device_count()} CUDA device(s) present"
            )
    return dev
