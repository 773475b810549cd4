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
a partition of the image and are accepted and ignored; ``min_mask_region_area`` drops smaller
regions and fills smaller holes; ``output_mode`` is honoured.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..automatic.records import MaskRecords
from ..engine.transforms import resize_image
from ..io.rle import decode_coco_rle, masks_to_uncompressed_rle

OUTPUT_MODES = ("binary_mask", "uncompressed_rle", "coco_rle")
SAM_OPTIONS = frozenset(
    {
        "points_per_batch",
        "pred_iou_thresh",
        "stability_score_thresh",
        "stability_score_offset",
        "box_nms_thresh",
        "crop_n_layers",
        "crop_nms_thresh",
        "crop_overlap_ratio",
        "crop_n_points_downscale_factor",
        "point_grids",
    }
)


class ClassicMaskGenerator:
    """Masks of every region of an image, as :class:`SamAutomaticMaskGenerator` returns them.

    Args:
        model: a :class:`~tijeras.classic.model.ClassicModel` (for its config).
        points_per_side: granularity: about ``points_per_side**2`` regions at most.
        min_mask_region_area: drop regions, and fill holes, smaller than this (pixels).
        output_mode: ``"binary_mask"``, ``"uncompressed_rle"`` or ``"coco_rle"``.
        **sam_options: SAM's other generator options, accepted and ignored.
    """

    def __init__(
        self,
        model: Any,
        points_per_side: int | None = 32,
        min_mask_region_area: int = 0,
        output_mode: str = "binary_mask",
        **sam_options: Any,
    ) -> None:
        unknown = sorted(set(sam_options) - SAM_OPTIONS)
        if unknown:
            raise TypeError(f"unexpected generator option(s): {', '.join(unknown)}")
        if output_mode not in OUTPUT_MODES:
            raise ValueError(f"output_mode must be one of {OUTPUT_MODES}, got {output_mode!r}")
        if points_per_side is not None and points_per_side < 1:
            raise ValueError(f"points_per_side must be >= 1, got {points_per_side}")
        self.config = model.config
        self.points_per_side = points_per_side or 32
        self.min_mask_region_area = min_mask_region_area
        self.output_mode = output_mode
        self.progress: Any = None  # optional callable(done, total), called once per image

    def generate(self, image: Any) -> list[dict[str, Any]]:
        """Records for an image (H x W x 3 uint8 RGB array, path, bytes or PIL image)."""
        from ..io.image import load_image

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
        from pycocotools import mask as mask_utils

        areas = mask_utils.area([_bytes_counts(r) for r in data.rles]) if len(data) else []
        out = []
        for i, rle in enumerate(data.rles):
            mask = decode_coco_rle(rle) if self.output_mode != "coco_rle" else None
            if self.output_mode == "coco_rle":
                segmentation: Any = rle
            elif self.output_mode == "binary_mask":
                segmentation = mask
            else:
                segmentation = masks_to_uncompressed_rle(torch.from_numpy(mask)[None])[0]
            x0, y0, x1, y1 = (int(v) for v in data.boxes[i])
            cx0, cy0, cx1, cy1 = (int(v) for v in data.crop_boxes[i])
            out.append(
                {
                    "segmentation": segmentation,
                    "area": int(areas[i]),
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "predicted_iou": float(data.iou[i]),
                    "point_coords": [data.points[i].tolist()],
                    "stability_score": float(data.stability[i]),
                    "crop_box": [cx0, cy0, cx1 - cx0, cy1 - cy0],
                }
            )
        return out


def _bytes_counts(rle: dict[str, Any]) -> dict[str, Any]:
    counts = rle["counts"]
    return {"size": rle["size"], "counts": counts.encode() if isinstance(counts, str) else counts}


def _is_rgb(image: Any) -> bool:
    return (
        isinstance(image, np.ndarray)
        and image.ndim == 3
        and image.shape[2] == 3
        and image.dtype == np.uint8
    )
