"""Running code written for the official packages on them and on tijeras, in one process.

``Backends.use("official")`` / ``Backends.use("tijeras")`` makes the official module names
(``segment_anything``, ``sam2`` and ``samgeo``, which imports them) refer to one side for the
duration of a ``with`` block; each side's modules are kept between blocks, and whatever was
imported before is put back afterwards, so other tests see the official packages as usual.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import torch

ROOTS = ("segment_anything", "sam2", "samgeo")
TINY_KEY = "vit_tiny"


def _take() -> dict[str, Any]:
    taken = {k: v for k, v in sys.modules.items() if k.split(".")[0] in ROOTS and v is not None}
    for k in taken:
        del sys.modules[k]
    return taken


class Backends:
    """Switches the official module names between the official packages and tijeras."""

    def __init__(self) -> None:
        self.kept: dict[str, dict[str, Any]] = {}

    @contextmanager
    def use(self, side: str) -> Iterator[None]:
        if side not in ("official", "tijeras"):
            raise ValueError(side)
        before = _take()
        if side not in self.kept and side == "official":
            self.kept[side] = {k: v for k, v in before.items() if not k.startswith("samgeo")}
        sys.modules.update(self.kept.get(side, {}))
        if side == "tijeras" and side not in self.kept:
            import tijeras.compat

            tijeras.compat.install_aliases()
        try:
            yield
        finally:
            self.kept[side] = _take()
            sys.modules.update(before)


def official_tiny_sam(checkpoint: str | Path | None = None) -> torch.nn.Module:
    """The official ``Sam`` with the structure of tijeras' ``test-tiny`` (ViT of 2 blocks of
    width 32, a decoder of width 32), loaded from ``checkpoint`` as Meta's builders do."""
    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=2,
            embed_dim=32,
            img_size=1024,
            mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=2,
            patch_size=16,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=(1,),
            window_size=14,
            out_chans=32,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=32,
            image_embedding_size=(64, 64),
            input_image_size=(1024, 1024),
            mask_in_chans=8,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=32, mlp_dim=64, num_heads=2),
            transformer_dim=32,
            iou_head_depth=3,
            iou_head_hidden_dim=32,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    sam.eval()
    if checkpoint is not None:
        sam.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    return sam


@contextmanager
def tiny_registered(backends: Backends, side: str) -> Iterator[Any]:
    """``backends.use(side)`` with ``sam_model_registry["vit_tiny"]`` registered (as user code
    adds its own builders); yields the side's ``segment_anything`` module."""
    with backends.use(side):
        import segment_anything

        if side == "official":
            segment_anything.sam_model_registry[TINY_KEY] = official_tiny_sam
        else:
            segment_anything.sam_model_registry[TINY_KEY] = segment_anything.sam_model_registry[
                "test-tiny"
            ]
        yield segment_anything


SAM2_CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"
