"""A stand-in mask generator and synthetic GeoTIFFs for the geospatial tests.

``BlobGenerator`` answers every tile with one mask per connected blob of one grey level, with
exact pixels: whatever the tiled output gets wrong (a seam, a duplicate, a split object) is the
tiling's fault, not the model's. It imports neither torch nor a model, so a 20,000 x 20,000
raster is labelled in seconds and its memory is the pipeline's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tijeras.automatic.frames import place_rle


@dataclass
class Records:
    """The columns tiled everything mode reads from ``generate_records`` (numpy, no torch)."""

    rles: list
    iou: np.ndarray
    stability: np.ndarray
    points: np.ndarray
    boxes: np.ndarray


class BlobGenerator:
    """One record per 4-connected blob of one non-zero grey level of the tile's red channel."""

    output_mode = "coco_rle"

    def __init__(self) -> None:
        self.tiles = 0

    def generate_records(self, tile: np.ndarray) -> Records:
        self.tiles += 1
        grey = cv2.extractChannel(tile, 0)
        height, width = grey.shape
        rles, scores, points, boxes = [], [], [], []
        count, regions, stats, _ = cv2.connectedComponentsWithStats(
            (grey > 0).view(np.uint8), connectivity=4
        )
        for region in range(1, count):
            x, y, w, h, _ = (int(v) for v in stats[region])
            inside = regions[y : y + h, x : x + w] == region
            values = grey[y : y + h, x : x + w]
            for value in np.unique(values[inside]):
                for blob, (bx, by) in _blobs(inside & (values == value)):
                    rles.append(place_rle(blob, x + bx, y + by, height, width))
                    area = int(blob.sum())
                    scores.append(0.8 + (int(value) % 50) / 1000 + min(area, 10**6) / 1e8)
                    row, col = 0, int(np.argmax(blob[0]))  # a box's top row is never empty
                    points.append([float(x + bx + col), float(y + by + row)])
                    boxes.append(
                        [x + bx, y + by, x + bx + blob.shape[1] - 1, y + by + blob.shape[0] - 1]
                    )
        n = len(rles)
        return Records(
            rles=rles,
            iou=np.asarray(scores, np.float64).reshape(n),
            stability=np.full(n, 0.97),
            points=np.asarray(points, np.float64).reshape(n, 2),
            boxes=np.asarray(boxes, np.int64).reshape(n, 4),
        )


def _blobs(mask: np.ndarray) -> list[tuple[np.ndarray, tuple[int, int]]]:
    """The 4-connected parts of a mask, each cropped to its box, with the box's corner."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=4)
    parts = []
    for label in range(1, count):
        x, y, w, h, _ = (int(v) for v in stats[label])
        parts.append((labels[y : y + h, x : x + w] == label, (x, y)))
    return parts


def write_geotiff(
    path: Path,
    data: np.ndarray,
    *,
    crs: str | None = "EPSG:32631",
    origin: tuple[float, float] = (430000.0, 4582000.0),
    pixel: float = 0.5,
    nodata: float | None = None,
    **options: object,
) -> Path:
    """Write a B x H x W (or H x W) array as a GeoTIFF, north up, ``pixel`` map units wide."""
    import rasterio
    from affine import Affine

    array = data[None] if data.ndim == 2 else data
    profile = {
        "driver": "GTiff",
        "width": array.shape[2],
        "height": array.shape[1],
        "count": array.shape[0],
        "dtype": str(array.dtype),
        "transform": Affine(pixel, 0.0, origin[0], 0.0, -pixel, origin[1]),
        "crs": crs,
        "nodata": nodata,
        **options,
    }
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(array)
    return path
