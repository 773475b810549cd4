"""``build_sam3_image_model``: Meta's builder, on tijeras' SAM 3 (any device, strict loading).

Meta's keyword arguments are accepted under their names; an unknown one is a ``TypeError``
naming it (there is no catch-all ``**kwargs``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import CheckpointError, UnknownModelError
from ..hub.download import cache_dir
from ..models.sam3.specs import CHECKPOINT_FILE, HF_REPO, SPECS


def _spec(name: str):
    for spec in SPECS:
        if name == spec.name or name in spec.aliases:
            return spec
    known = ", ".join(spec.name for spec in SPECS)
    raise UnknownModelError(f"unknown SAM 3 model {name!r}; known: {known}")


def build_sam3_image_model(
    checkpoint_path: str | Path | None = None,
    device: str | torch.device = "cpu",
    *,
    bpe_path: str | Path | None = None,
    eval_mode: bool = True,
    load_from_HF: bool = True,
    enable_segmentation: bool = True,
    enable_inst_interactivity: bool = True,
    compile: bool = False,
    dtype: torch.dtype | str | None = None,
    model_name: str = "sam3",
) -> torch.nn.Module:
    """Build the SAM 3 image model and load its weights strictly.

    Args:
        checkpoint_path: Meta's ``sam3.pt`` or Hugging Face's ``model.safetensors``.
        device: where the model runs (default CPU, unlike Meta's CUDA default).
        bpe_path: CLIP's ``bpe_simple_vocab_16e6.txt.gz`` (default: open_clip_torch's copy).
        eval_mode: put the model in eval mode.
        load_from_HF: without ``checkpoint_path``, take ``sam3.pt`` from tijeras' cache
            (``~/.cache/tijeras`` or ``$TIJERAS_CACHE``); the file is gated, so it is never
            downloaded here. False: random weights.
        enable_segmentation, enable_inst_interactivity: the mask head and the point/box head
            are always built (the checkpoint holds both); False is refused.
        compile: torch.compile is not used; True is refused.
        dtype: float32 (default) or bfloat16 / float16.
        model_name: ``"sam3"``, or ``"sam3-test-tiny"`` (random weights, for tests).

    Returns:
        A :class:`tijeras.models.sam3.model.Sam3Model`.
    """
    for flag, value in (
        ("enable_segmentation", enable_segmentation),
        ("enable_inst_interactivity", enable_inst_interactivity),
    ):
        if not value:
            raise ValueError(f"{flag}=False is not supported: tijeras builds the whole image model")
    if compile:
        raise ValueError("compile=True is not supported: tijeras runs SAM 3 without torch.compile")
    from ..models.sam3.checkpoint import load_checkpoint
    from ..models.sam3.model import Sam3Model

    spec = _spec(model_name)
    if checkpoint_path is None and load_from_HF and spec.checkpoint is not None:
        checkpoint_path = cache_dir() / CHECKPOINT_FILE
        if not checkpoint_path.is_file():
            raise CheckpointError(
                f"no SAM 3 weights at {checkpoint_path}: the weights are gated; accept Meta's "
                f"license at https://huggingface.co/{HF_REPO}, download {CHECKPOINT_FILE} and "
                "pass checkpoint_path= (or put it in the cache folder)"
            )
    model = Sam3Model(spec.config, bpe_path=None if bpe_path is None else str(bpe_path))
    if checkpoint_path is not None:
        load_checkpoint(model, checkpoint_path, spec.name)
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    model = model.to(device=torch.device(device), dtype=dtype or torch.float32)
    model.name = spec.name
    return model.eval() if eval_mode else model
