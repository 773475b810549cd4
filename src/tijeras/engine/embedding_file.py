"""Image embeddings saved to and loaded from ``.safetensors`` files (no pickle)."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import TijerasError
from ..types import ImageEmbedding

FORMAT = "tijeras-embedding/1"


def save_embedding(embedding: ImageEmbedding, path: str | Path) -> Path:
    """Write an embedding (tensors plus sizes and model name) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {"features": embedding.features.detach().contiguous().cpu()}
    tensors.update(
        {f"extra.{k}": v.detach().contiguous().cpu() for k, v in embedding.extra.items()}
    )
    meta = {
        "format": FORMAT,
        "model_name": embedding.model_name,
        "original_size": json.dumps(list(embedding.original_size)),
        "input_size": json.dumps(list(embedding.input_size)),
    }
    save_file(tensors, str(path), metadata=meta)
    return path


def load_embedding(path: str | Path) -> ImageEmbedding:
    """Read an embedding written by :func:`save_embedding`."""
    path = Path(path)
    if not path.is_file():
        raise TijerasError(f"embedding file not found: {path}")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise TijerasError(f"{path} is not an embedding file: {exc}") from None
    if meta.get("format") != FORMAT or "features" not in tensors:
        raise TijerasError(
            f"{path} is not a tijeras embedding file (format {meta.get('format')!r})"
        )
    extra = {k[len("extra.") :]: v for k, v in tensors.items() if k.startswith("extra.")}
    return ImageEmbedding(
        features=tensors["features"],
        original_size=tuple(json.loads(meta["original_size"])),
        input_size=tuple(json.loads(meta["input_size"])),
        model_name=meta["model_name"],
        extra=extra,
    )
