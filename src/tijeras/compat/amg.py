"""The helpers of Meta's ``segment_anything.utils.amg`` (and ``sam2.utils.amg``), by name.

Each function keeps Meta's name, arguments and return types and is computed by the
corresponding tijeras function (grids and crops from :mod:`tijeras.automatic.grid`, filters
from :mod:`tijeras.automatic.filters`, run-length encodings from :mod:`tijeras.io.rle`), so
code that assembles its own everything mode from these pieces gets tijeras' results.
``MaskData`` is Meta's string-keyed column store; tijeras' own generator uses the typed
:class:`~tijeras.automatic.records.MaskRecords` instead.
"""

from __future__ import annotations

import copy
from collections.abc import Generator, ItemsView
from typing import Any

import numpy as np
import torch

from tijeras.automatic import filters, grid
from tijeras.io import rle as rle_io

_COLUMN_TYPES = (list, np.ndarray, torch.Tensor)


class MaskData:
    """Columns of per-mask values (lists, arrays or tensors) under string keys."""

    _float_numpy = False  # SAM 2's variant turns tensors into float32 arrays

    def __init__(self, **kwargs: Any) -> None:
        for k, v in kwargs.items():
            _check_column(k, v)
        self._stats = dict(kwargs)

    def __setitem__(self, key: str, item: Any) -> None:
        _check_column(key, item)
        self._stats[key] = item

    def __delitem__(self, key: str) -> None:
        del self._stats[key]

    def __getitem__(self, key: str) -> Any:
        return self._stats[key]

    def items(self) -> ItemsView[str, Any]:
        return self._stats.items()

    def filter(self, keep: torch.Tensor) -> None:
        """Keep the rows selected by ``keep`` (bool mask or indices) in every column."""
        for k, v in self._stats.items():
            if v is None:
                continue
            if isinstance(v, torch.Tensor):
                self._stats[k] = v[torch.as_tensor(keep, device=v.device)]
            elif isinstance(v, np.ndarray):
                self._stats[k] = v[torch.as_tensor(keep).cpu().numpy()]
            elif isinstance(v, list) and torch.as_tensor(keep).dtype == torch.bool:
                self._stats[k] = [a for i, a in enumerate(v) if bool(keep[i])]
            else:
                self._stats[k] = [v[int(i)] for i in keep]

    def cat(self, new_stats: MaskData) -> None:
        """Append the rows of ``new_stats`` to every column."""
        for k, v in new_stats.items():
            if k not in self._stats or self._stats[k] is None:
                self._stats[k] = copy.deepcopy(v)
            elif isinstance(v, torch.Tensor):
                self._stats[k] = torch.cat([self._stats[k], v], dim=0)
            elif isinstance(v, np.ndarray):
                self._stats[k] = np.concatenate([self._stats[k], v], axis=0)
            else:
                self._stats[k] = self._stats[k] + copy.deepcopy(v)

    def to_numpy(self) -> None:
        """Turn every tensor column into a NumPy array."""
        for k, v in self._stats.items():
            if isinstance(v, torch.Tensor):
                v = v.float() if self._float_numpy else v
                self._stats[k] = v.detach().cpu().numpy()


class Sam2MaskData(MaskData):
    """``sam2.utils.amg.MaskData``: :meth:`to_numpy` gives float32 arrays for every tensor."""

    _float_numpy = True


def _check_column(key: str, value: Any) -> None:
    if value is not None and not isinstance(value, _COLUMN_TYPES):
        raise TypeError(
            f"MaskData column {key!r} must be a list, NumPy array or torch tensor, "
            f"got {type(value).__name__}"
        )


def is_box_near_crop_edge(
    boxes: torch.Tensor, crop_box: list[int], orig_box: list[int], atol: float = 20.0
) -> torch.Tensor:
    """Which N x 4 boxes (crop coordinates) touch a crop edge that is not an image edge."""
    return filters.near_crop_edge(boxes, crop_box, orig_box, atol=atol)


def box_xyxy_to_xywh(box_xyxy: Any) -> Any:
    """A copy of ``... x 4`` xyxy boxes as xywh (a tensor or an array, dtype kept)."""
    box_xywh = copy.deepcopy(box_xyxy)
    box_xywh[..., 2] = box_xywh[..., 2] - box_xywh[..., 0]
    box_xywh[..., 3] = box_xywh[..., 3] - box_xywh[..., 1]
    return box_xywh


def batch_iterator(batch_size: int, *args: Any) -> Generator[list[Any], None, None]:
    """Slices of ``batch_size`` rows of every argument (all of the same length)."""
    if not args or any(len(a) != len(args[0]) for a in args):
        raise ValueError("batch_iterator needs arguments of one and the same length")
    n_batches = -(-len(args[0]) // batch_size)
    for b in range(n_batches):
        yield [arg[b * batch_size : (b + 1) * batch_size] for arg in args]


def mask_to_rle_pytorch(tensor: torch.Tensor) -> list[dict[str, Any]]:
    """B x H x W masks -> uncompressed COCO RLEs ``{"size": [H, W], "counts": [...]}``."""
    return rle_io.masks_to_uncompressed_rle(tensor)


def rle_to_mask(rle: dict[str, Any]) -> np.ndarray:
    """An uncompressed RLE -> H x W bool mask."""
    return rle_io.uncompressed_rle_to_mask(rle)


def area_from_rle(rle: dict[str, Any]) -> int:
    """Foreground pixels of an uncompressed RLE."""
    return rle_io.rle_area(rle)


def calculate_stability_score(
    masks: torch.Tensor, mask_threshold: float, threshold_offset: float
) -> torch.Tensor:
    """IoU of each mask thresholded at ``mask_threshold`` +- ``threshold_offset``: ... x H x W
    logits -> ... scores."""
    return filters.stability_score(
        masks.flatten(0, -3) if masks.ndim > 3 else masks, mask_threshold, threshold_offset
    ).reshape(masks.shape[:-2])


def build_point_grid(n_per_side: int) -> np.ndarray:
    """(n_per_side**2) x 2 cell centres of a regular grid in [0, 1] x [0, 1]."""
    return grid.point_grid(n_per_side)


def build_all_layer_point_grids(
    n_per_side: int, n_layers: int, scale_per_layer: int
) -> list[np.ndarray]:
    """One point grid per crop layer (layer i: ``n_per_side / scale_per_layer**i`` per side)."""
    return grid.layer_point_grids(n_per_side, n_layers, scale_per_layer)


def generate_crop_boxes(
    im_size: tuple[int, ...], n_layers: int, overlap_ratio: float
) -> tuple[list[list[int]], list[int]]:
    """xyxy crop boxes of every crop layer and the layer of each."""
    return grid.crop_boxes((int(im_size[0]), int(im_size[1])), n_layers, overlap_ratio)


def uncrop_boxes_xyxy(boxes: torch.Tensor, crop_box: list[int]) -> torch.Tensor:
    """Boxes (... x 4) from crop coordinates to image coordinates."""
    x0, y0, _, _ = crop_box
    offset = torch.tensor([x0, y0, x0, y0], device=boxes.device)
    return boxes + offset


def uncrop_points(points: torch.Tensor, crop_box: list[int]) -> torch.Tensor:
    """Points (... x 2) from crop coordinates to image coordinates."""
    x0, y0, _, _ = crop_box
    return points + torch.tensor([x0, y0], device=points.device)


def uncrop_masks(
    masks: torch.Tensor, crop_box: list[int], orig_h: int, orig_w: int
) -> torch.Tensor:
    """Masks of a crop (... x h x w) padded with zeros to the whole image (... x H x W)."""
    x0, y0, x1, y1 = crop_box
    if x0 == 0 and y0 == 0 and x1 == orig_w and y1 == orig_h:
        return masks
    pad = (x0, orig_w - x1, y0, orig_h - y1)
    return torch.nn.functional.pad(masks, pad, value=0)


def remove_small_regions(
    mask: np.ndarray, area_thresh: float, mode: str
) -> tuple[np.ndarray, bool]:
    """Fill holes (``mode="holes"``) or remove islands (``"islands"``) smaller than
    ``area_thresh`` pixels; returns the mask and whether it changed."""
    if mode not in ("holes", "islands"):
        raise ValueError(f"mode must be 'holes' or 'islands', got {mode!r}")
    return filters.remove_small_regions(mask, area_thresh, mode)


def coco_encode_rle(uncompressed_rle: dict[str, Any]) -> dict[str, Any]:
    """An uncompressed RLE -> a compressed COCO RLE with ``str`` counts."""
    return rle_io.uncompressed_to_coco_rle([uncompressed_rle])[0]


def batched_mask_to_box(masks: torch.Tensor) -> torch.Tensor:
    """Inclusive xyxy boxes of ... x H x W masks (zeros for an empty mask); int64, or float
    zeros of shape ... x 4 when there are no masks at all, as Meta's function returns."""
    if masks.numel() == 0:
        return torch.zeros(*masks.shape[:-2], 4, device=masks.device)
    masks = masks if masks.dtype == torch.bool else masks != 0
    return filters.masks_to_boxes(masks.reshape(-1, *masks.shape[-2:])).reshape(
        *masks.shape[:-2], 4
    )
