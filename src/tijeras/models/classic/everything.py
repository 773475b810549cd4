"""Everything mode of the classical backend: Felzenszwalb's graph-based over-segmentation.

The image is resized so its longest side is the model's ``image_size`` (never enlarged) and
segmented with :func:`skimage.segmentation.felzenszwalb`. Its ``scale`` (k) sets how strong a
boundary must be, relative to a region's size, to keep two regions apart: the merge threshold
of a region of ``n`` pixels is ``k / n``, so k is a region area. It is tied to the grid cell of
SAM's ``points_per_side`` (image area / points_per_side**2, the smallest object SAM's grid
reliably hits): ``scale = everything_scale * cell`` and ``min_size = everything_min_cell *
cell``, so ``points_per_side`` keeps its meaning of a granularity and the result does not
depend on the resolution. ``sigma`` 0.8 is the value of Felzenszwalb and Huttenlocher's paper.

Each region becomes one of Meta's records:

* ``predicted_iou``: boundary contrast, ``b / (b + i)`` with ``b`` the mean colour gradient on
  the region's outline and ``i`` inside it (0.5: no stronger on the outline than inside);
* ``stability_score``: IoU of the region with its best match in a second segmentation at twice
  the scale (a region that survives coarser grouping is stable);
* ``point_coords``: the region's pixel farthest from its outline.

SAM's other options (IoU and stability thresholds, NMS, crops, batch size) have no meaning for
a partition of the image and are ignored; ``min_mask_region_area`` drops smaller
regions and fills smaller holes; ``output_mode`` is honoured.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...automatic.options import EverythingOptions
from ...automatic.records import OUTPUT_MODES, MaskRecords, records_to_output
from ...engine.transforms import resize_image


class ClassicMaskGenerator:
    """Masks of every region of an image, as :class:`SamAutomaticMaskGenerator` returns them.

    Args:
        model: a :class:`~tijeras.models.classic.model.ClassicModel` (for its config).
        options: everything-mode options; two apply: ``points_per_side`` (granularity: about
            ``points_per_side**2`` regions at most) and ``min_mask_region_area`` (drop regions,
            and fill holes, smaller than this many pixels).
        output_mode: ``"binary_mask"``, ``"uncompressed_rle"`` or ``"coco_rle"``.
    """

    def __init__(
        self,
        model: Any,
        options: EverythingOptions | None = None,
        *,
        output_mode: str = "binary_mask",
    ) -> None:
        options = model.everything_defaults if options is None else options
        if output_mode not in OUTPUT_MODES:
            raise ValueError(f"output_mode must be one of {OUTPUT_MODES}, got {output_mode!r}")
        self.config = model.config
        self.options = options
        self.points_per_side = options.points_per_side
        self.min_mask_region_area = options.min_mask_region_area
        self.output_mode = output_mode
        self.progress: Any = None  # optional callable(done, total), called once per image

    def generate(self, image: Any, embedding: Any = None) -> list[dict[str, Any]]:
        """Records for an image (H x W x 3 uint8 RGB array, path, bytes or PIL image).

        ``embedding`` is accepted for the generators' common signature and not needed: the
        regions are computed from the pixels.
        """
        from ...io.image import load_image

        rgb = image if _is_rgb(image) else load_image(image)
        return self.to_output(self.generate_records(rgb))

    def generate_records(self, image: np.ndarray) -> MaskRecords:
        """The regions as typed columns (compressed RLEs at the image's size)."""
        from .regions import region_records

        height, width = image.shape[:2]
        scale = min(1.0, self.config.image_size / max(height, width))
        small = resize_image(image, self.config.image_size) if scale < 1.0 else image
        cell = small.shape[0] * small.shape[1] / self.points_per_side**2
        records = region_records(
            image_small=small,
            full_size=(height, width),
            scale=self.config.everything_scale * cell,
            sigma=self.config.everything_sigma,
            min_size=max(1, int(self.config.everything_min_cell * cell)),
            min_area=self.min_mask_region_area,
        )
        if self.progress is not None:
            self.progress(1, 1)
        return records

    def to_output(self, data: MaskRecords) -> list[dict[str, Any]]:
        """Meta's records, with ``segmentation`` as ``output_mode`` asks."""
        return records_to_output(data, self.output_mode)


def _is_rgb(image: Any) -> bool:
    return (
        isinstance(image, np.ndarray)
        and image.ndim == 3
        and image.shape[2] == 3
        and image.dtype == np.uint8
    )
