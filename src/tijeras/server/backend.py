"""Choosing and loading the model the server runs.

Order: an explicit ``--checkpoint``; the official file already in the cache; a download with a
short time-out; and where all of that fails, the classical backend (``classic``), which needs
no weights. The reason for a fallback is kept so the page can say what happened and how to
add SAM weights.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import TijerasError
from .settings import ServerSettings

log = logging.getLogger("tijeras.server")

FALLBACK_MODEL = "classic"


@dataclass
class Backend:
    """The loaded model and how it came to be chosen."""

    model: torch.nn.Module
    name: str
    description: str
    fallback_reason: str | None = None

    @property
    def is_fallback(self) -> bool:
        return self.fallback_reason is not None


def load_backend(
    name: str,
    checkpoint: str | Path | None = None,
    *,
    device: str = "cpu",
    dtype: str = "float32",
    download: bool = True,
    download_timeout: float = 10.0,
    cache: str | Path | None = None,
) -> Backend:
    """Load ``name``; fall back to the classical backend when its weights cannot be had.

    A checkpoint given explicitly must load: its errors are raised, not hidden by a fallback.
    """
    from ..api import load_model
    from ..catalog import get_spec
    from ..hub.download import cached_checkpoint
    from ..hub.download import download as fetch

    spec = get_spec(name)
    if checkpoint is not None or spec.checkpoint is None:
        if checkpoint is None:
            torch.manual_seed(0)  # random-weight test models: the same model on every start
        model = load_model(spec.name, checkpoint, device=device, dtype=dtype)
        return Backend(model, spec.name, spec.description)
    found = cached_checkpoint(spec.name, cache)
    reason = None
    if found is None and download:
        log.info("no weights for %s in the cache; downloading them", spec.name)
        try:
            found = fetch(spec.name, cache, timeout=download_timeout)
        except TijerasError as err:
            reason = f"the weights of {spec.name} could not be downloaded ({err})"
    elif found is None:
        reason = f"no weights for {spec.name} were found and downloading is switched off"
    if found is not None:
        model = load_model(spec.name, found, device=device, dtype=dtype)
        return Backend(model, spec.name, spec.description)
    log.warning("%s; starting the classical backend instead", reason)
    fallback = get_spec(FALLBACK_MODEL)
    model = load_model(fallback.name, device=device)
    return Backend(model, fallback.name, fallback.description, fallback_reason=reason)


def weights_hint(name: str) -> str:
    """How a user adds SAM weights (shown on the page while the fallback runs)."""
    return (
        f"Run `tijeras download {name}` on a machine with internet access (or copy the official "
        f"file into the cache folder shown by `tijeras models`), or start the server with "
        f"`--checkpoint PATH`, then restart `tijeras serve`."
    )


def load_configured_backend(settings: ServerSettings) -> Backend:
    """:func:`load_backend` with the model, weights and download options of ``settings``."""
    return load_backend(
        settings.model,
        settings.checkpoint,
        device=settings.device,
        dtype=settings.dtype,
        download=settings.download,
        download_timeout=settings.download_timeout,
        cache=settings.cache,
    )
