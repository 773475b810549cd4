"""The SAM 3 family's registered variants and builder (torch-free; the modules are imported
when a model is built).

``sam3`` is Meta's image model with its interactive head; its weights (``sam3.pt``, or the
``model.safetensors`` of the Hugging Face repository ``facebook/sam3``, both loaded by the same
remap) are gated: each user accepts Meta's license on the model page before downloading them.
``sam3-test-tiny`` has every component at toy sizes, with random weights, for tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...automatic.options import SAM2_EVERYTHING
from ...hub.registry import CheckpointFile, Family, ModelSpec
from . import config as cfg

if TYPE_CHECKING:
    from torch import nn

HF_REPO = "facebook/sam3"
CHECKPOINT_FILE = "sam3.pt"
CHECKPOINT_URL = f"https://huggingface.co/{HF_REPO}"


def build(config: cfg.Sam3Config) -> nn.Module:
    """A SAM 3 model with random weights."""
    from .model import Sam3Model

    return Sam3Model(config)


def remap(state_dict: dict[str, Any]) -> dict[str, Any]:
    """Meta's ``sam3.pt`` or Hugging Face's layout -> the model's keys (see ``checkpoint``)."""
    from .checkpoint import remap as remap_keys

    return remap_keys(state_dict)


def describe_checkpoint(state_dict: Mapping[str, Any]) -> str | None:
    """``"SAM 3 (...)"`` for a SAM 3 state dict of either layout, else None."""
    from .checkpoint import checkpoint_format, describe

    if checkpoint_format(state_dict) is None:
        return None
    return f"SAM 3 ({describe(state_dict)})"


SPECS = (
    ModelSpec(
        name="sam3",
        family="sam3",
        config=cfg.SAM3,
        description="SAM 3: text and exemplar prompts + SAM 2-style clicks (848M parameters)",
        aliases=("sam3-image", HF_REPO),
        checkpoint=CheckpointFile(filename=CHECKPOINT_FILE, url=CHECKPOINT_URL, gated=True),
        everything=SAM2_EVERYTHING,
        remap=remap,
    ),
    ModelSpec(
        name="sam3-test-tiny",
        family="sam3",
        config=cfg.SAM3_TEST_TINY,
        description="tiny random-weight SAM 3 for tests (no checkpoint)",
        everything=SAM2_EVERYTHING,
        remap=remap,
    ),
)

FAMILY = Family(name="sam3", build=build, specs=SPECS, describe_checkpoint=describe_checkpoint)
