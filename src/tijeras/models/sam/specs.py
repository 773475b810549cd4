"""The SAM family's registered variants: SAM ViT-B/L/H, MobileSAM and tiny test models.

Torch-free, so listing models and building CLI help stays fast; :func:`build` imports the
modules when a model is made.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...automatic.options import SAM_EVERYTHING
from ...hub.registry import CheckpointFile, Family, ModelSpec
from . import config as cfg

if TYPE_CHECKING:
    from torch import nn

_SAM_URL = "https://dl.fbaipublicfiles.com/segment_anything/"
# Meta publishes no digests. The SHA-256 values below are those recorded by the Git LFS servers of
# several independent public mirrors of these exact files (Hugging Face model repositories that
# uploaded them from Meta's URLs), and match the byte sizes Meta's server reports.

# The MobileSAM authors publish the weights in their GitHub repository (Apache-2.0) without a
# digest. The size and SHA-256 below are those recorded independently by several public projects
# that pin this file (downloaded from this URL, repository commit f706ad9c).
MOBILE_SAM_URL = "https://github.com/ChaoningZhang/MobileSAM/raw/master/weights/mobile_sam.pt"


def build(config: cfg.SamConfig) -> nn.Module:
    """A SAM (or MobileSAM) module with random weights."""
    from .model import Sam

    return Sam(config)


_SAM_WIDTHS = {768: "sam-vit-b", 1024: "sam-vit-l", 1280: "sam-vit-h"}


def describe_checkpoint(state_dict: Mapping[str, Any]) -> str | None:
    """Which SAM variant a state_dict looks like, or None if it is not a SAM file."""
    keys = state_dict.keys()
    if any(k.startswith("image_encoder.layers.") for k in keys):
        return "MobileSAM (mobile-sam, TinyViT encoder)"
    weight = state_dict.get("image_encoder.patch_embed.proj.weight")
    if weight is not None and weight.ndim == 4:
        name = _SAM_WIDTHS.get(int(weight.shape[0]))
        depth = len({k.split(".")[2] for k in keys if k.startswith("image_encoder.blocks.")})
        return f"{name} ({depth} blocks)" if name else f"a SAM ViT of width {weight.shape[0]}"
    if any(k.startswith("mask_decoder.") for k in keys):
        return "a SAM-family model without a known image encoder"
    return None


def _sam(name: str, config: cfg.SamConfig, description: str, **kwargs: Any) -> ModelSpec:
    return ModelSpec(
        name=name,
        family="sam",
        config=config,
        description=description,
        everything=SAM_EVERYTHING,
        **kwargs,
    )


SPECS = (
    _sam(
        "sam-vit-b",
        cfg.SAM_VIT_B,
        "SAM ViT-B (91M parameters)",
        aliases=("vit_b",),
        checkpoint=CheckpointFile(
            filename="sam_vit_b_01ec64.pth",
            url=_SAM_URL + "sam_vit_b_01ec64.pth",
            size=375042383,
            sha256="ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
        ),
    ),
    _sam(
        "sam-vit-l",
        cfg.SAM_VIT_L,
        "SAM ViT-L (308M parameters)",
        aliases=("vit_l",),
        checkpoint=CheckpointFile(
            filename="sam_vit_l_0b3195.pth",
            url=_SAM_URL + "sam_vit_l_0b3195.pth",
            size=1249524607,
            sha256="3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
        ),
    ),
    _sam(
        "sam-vit-h",
        cfg.SAM_VIT_H,
        "SAM ViT-H (636M parameters)",
        aliases=("vit_h", "default"),
        checkpoint=CheckpointFile(
            filename="sam_vit_h_4b8939.pth",
            url=_SAM_URL + "sam_vit_h_4b8939.pth",
            size=2564550879,
            sha256="a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
        ),
    ),
    _sam(
        "mobile-sam",
        cfg.MOBILE_SAM,
        "MobileSAM, TinyViT-5M encoder + SAM decoder (10M parameters)",
        aliases=("vit_t", "mobile_sam"),
        checkpoint=CheckpointFile(
            filename="mobile_sam.pt",
            url=MOBILE_SAM_URL,
            size=40728226,
            sha256="6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f",
        ),
    ),
    _sam("test-tiny", cfg.SAM_TEST_TINY, "tiny random-weight SAM for tests (no checkpoint)"),
    _sam(
        "test-tiny-mobile",
        cfg.MOBILE_SAM_TEST_TINY,
        "tiny random-weight MobileSAM for tests (no checkpoint)",
    ),
)

FAMILY = Family(name="sam", build=build, specs=SPECS, describe_checkpoint=describe_checkpoint)
