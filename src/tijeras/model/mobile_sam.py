"""MobileSAM: SAM's prompt encoder and mask decoder behind a TinyViT-5M image encoder.

MobileSAM is a :class:`tijeras.model.sam.Sam` whose config carries a
:class:`~tijeras.model.config.TinyViTConfig`, so it shares SAM's decoder, predictor, everything
mode and checkpoint handling; this module only registers the variants.
"""

from __future__ import annotations

from . import config as cfg
from .registry import CheckpointFile, ModelSpec, register

# The authors publish the weights in their GitHub repository (Apache-2.0) without a digest. The
# size and SHA-256 below are those recorded independently by several public projects that pin
# this file (downloaded from this URL, repository commit f706ad9c).
MOBILE_SAM_URL = "https://github.com/ChaoningZhang/MobileSAM/raw/master/weights/mobile_sam.pt"

MOBILE_SAM = register(
    ModelSpec(
        name="mobile-sam",
        family="sam",
        config=cfg.MOBILE_SAM,
        description="MobileSAM, TinyViT-5M encoder + SAM decoder (10M parameters)",
        aliases=("vit_t", "mobile_sam"),
        checkpoint=CheckpointFile(
            filename="mobile_sam.pt",
            url=MOBILE_SAM_URL,
            size=40728226,
            sha256="6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f",
        ),
    )
)
MOBILE_SAM_TEST_TINY = register(
    ModelSpec(
        name="test-tiny-mobile",
        family="sam",
        config=cfg.MOBILE_SAM_TEST_TINY,
        description="tiny random-weight MobileSAM for tests (no checkpoint)",
    )
)
