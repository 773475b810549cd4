"""The classical fallback backend ``classic``: no weights, no download.

Box and point prompts are segmented with OpenCV's GrabCut (:mod:`.grabcut`), everything mode
with scikit-image's Felzenszwalb over-segmentation (:mod:`.everything`), behind the predictor
interface of the SAM models, so the predictor, the CLI and the server run it unchanged::

    model = tijeras.load_model("classic")
    predictor = tijeras.Predictor(model)

Importing this package registers the model; the heavy modules load when it is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...automatic.options import SAM_EVERYTHING
from ...hub.registry import Family, ModelSpec
from .config import CLASSIC, ClassicConfig

if TYPE_CHECKING:
    from torch import nn

__all__ = ["CLASSIC", "FAMILY", "ClassicConfig"]


def _build_classic(config: ClassicConfig) -> nn.Module:
    from .model import ClassicModel

    return ClassicModel(config)


FAMILY = Family(
    name="classic",
    build=_build_classic,
    specs=(
        ModelSpec(
            name="classic",
            family="classic",
            config=CLASSIC,
            description="classical fallback (GrabCut + Felzenszwalb), no weights",
            everything=SAM_EVERYTHING,
            weightless=True,
        ),
    ),
)
