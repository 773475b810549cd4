"""Meta's ``segment_anything`` package, backed by tijeras: the same module tree and names.

Change the import (``from tijeras.compat.segment_anything import SamPredictor``) or let the
official name point here (:func:`tijeras.compat.install_aliases`), and code written for Meta's
package runs unchanged: ``build_sam``, ``build_sam_vit_h/l/b`` (and MobileSAM's
``build_sam_vit_t``), ``sam_model_registry``, ``SamPredictor``, ``SamAutomaticMaskGenerator``,
and the modules ``build_sam``, ``predictor``, ``automatic_mask_generator``, ``modeling``,
``utils.transforms`` and ``utils.amg``.

Every module of this tree imports tijeras by its absolute name and only re-exports, so it may
be loaded again under the official name without creating a second copy of any class.
"""

from tijeras.compat.sam_build import (
    build_sam,
    build_sam_vit_b,
    build_sam_vit_h,
    build_sam_vit_l,
    build_sam_vit_t,
    sam_model_registry,
)
from tijeras.compat.sam_generator import SamAutomaticMaskGenerator
from tijeras.compat.sam_predictor import SamPredictor
from tijeras.compat.sam_transforms import ResizeLongestSide

__all__ = [
    "ResizeLongestSide",
    "SamAutomaticMaskGenerator",
    "SamPredictor",
    "build_sam",
    "build_sam_vit_b",
    "build_sam_vit_h",
    "build_sam_vit_l",
    "build_sam_vit_t",
    "sam_model_registry",
]
