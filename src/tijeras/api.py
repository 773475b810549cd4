"""The native entry point: ``load_model(name)`` with weights from a file or the cache."""

from __future__ import annotations

from pathlib import Path

import torch

from .catalog import build_model, get_spec
from .defaults import DEFAULT_MODEL
from .errors import TijerasError
from .hub.devices import resolve_device
from .hub.download import cached_checkpoint
from .hub.download import download as fetch
from .hub.precision import AUTO, choose_precision

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def parse_dtype(dtype: torch.dtype | str) -> torch.dtype:
    """A torch dtype from its name (``"float32"``, ``"bfloat16"``, ``"float16"``)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise TijerasError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}, {AUTO}")
    return DTYPES[dtype]


def load_model(
    name: str = DEFAULT_MODEL,
    checkpoint: str | Path | None = None,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str = "float32",
    download: bool = False,
    cache: str | Path | None = None,
    decoder_dtype: torch.dtype | str | None = None,
) -> torch.nn.Module:
    """Build a registered model with its weights, ready for a :class:`tijeras.Predictor`.

    Args:
        name: registered name or alias (see ``tijeras.list_models()``).
        checkpoint: a weights file. When None, the official file in the cache is used; if it is
            not there it is downloaded when ``download`` is True, else an error says how to get
            it. Models without official weights (``test-tiny``) keep their random weights.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        dtype: ``"float32"``, or ``"bfloat16"`` / ``"float16"`` for the fast modes, or
            ``"auto"``: a bfloat16 image encoder where the device runs it fast (AMX or
            AVX-512 BF16 CPUs, Ampere and later GPUs) behind a float32 decoder, else float32
            (see :func:`tijeras.hub.precision.choose_precision`).
        cache: the download cache folder (default ``$TIJERAS_CACHE`` or ``~/.cache/tijeras``).
        decoder_dtype: a different dtype for the prompt encoder and mask decoder, e.g.
            ``"float32"`` behind a ``"bfloat16"`` encoder for masks closer to full precision.
    """
    spec = get_spec(name)
    if isinstance(dtype, str) and dtype == AUTO:
        chosen = choose_precision(resolve_device(device))
        dtype = chosen.encoder
        if decoder_dtype is None and chosen.decoder != chosen.encoder:
            decoder_dtype = chosen.decoder
    torch_dtype = parse_dtype(dtype)
    if checkpoint is None and spec.checkpoint is not None:
        checkpoint = cached_checkpoint(spec.name, cache)
        if checkpoint is None:
            if not download:
                raise TijerasError(
                    f"no weights for {spec.name}: run `tijeras download {spec.name}` "
                    "or pass a checkpoint path"
                )
            checkpoint = fetch(spec.name, cache)
    model = build_model(
        spec.name,
        checkpoint,
        device=device,
        dtype=torch_dtype,
        decoder_dtype=None if decoder_dtype is None else parse_dtype(decoder_dtype),
    )
    return model
