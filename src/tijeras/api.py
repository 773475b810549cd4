"""The native entry point: ``load_model(name)`` with weights from a file or the cache."""

from __future__ import annotations

from pathlib import Path

import torch

from .errors import TijerasError
from .model.download import cached_checkpoint
from .model.download import download as fetch
from .model.registry import DEFAULT_MODEL, build_model, get_spec

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def parse_dtype(dtype: torch.dtype | str) -> torch.dtype:
    """A torch dtype from its name (``"float32"``, ``"bfloat16"``, ``"float16"``)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise TijerasError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
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
        dtype: ``"float32"``, or ``"bfloat16"`` / ``"float16"`` for the fast modes.
        cache: the download cache folder (default ``$TIJERAS_CACHE`` or ``~/.cache/tijeras``).
        decoder_dtype: a different dtype for the prompt encoder and mask decoder, e.g.
            ``"float32"`` behind a ``"bfloat16"`` encoder for masks closer to full precision.
    """
    spec = get_spec(name)
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
    model.name = spec.name
    return model
