"""GeoTIFFs (and any raster GDAL reads) as the engine's H x W x 3 uint8 RGB, window by window.

:class:`GeoRaster` opens a raster with rasterio and never reads it whole: :meth:`GeoRaster.read`
returns one window, so it is the :class:`~tijeras.automatic.tiling.TileSource` of tiled
everything mode. Each window goes through the same steps:

1. **Bands.** One band (grey: repeated three times) or three (red, green, blue), 1-based as in
   GDAL. By default the bands whose colour interpretation is red, green and blue, else bands
   1, 2, 3, else band 1. An alpha band is never a colour: it masks.
2. **Stretch.** 8-bit rasters are used as they are. Anything else (16-bit, float: sonar, SAR,
   DEMs, multispectral reflectances) is mapped to 0-255 linearly between two percentiles of
   each band, 2 and 98 unless told otherwise, found once for the whole raster on a reduced
   read (the overviews when the file has them), so every window of the raster gets the same
   mapping and tiles meet without a change of contrast.
3. **Nodata.** The pixels GDAL marks invalid (the nodata value, an alpha band or an internal
   mask; NaN and infinities in float rasters) are black in the RGB and reported by
   :meth:`GeoRaster.valid`, which the vector writers use to cut nodata out of every object.

GDAL's block cache is limited (64 MB by default) for every read, so memory stays that of one
window whatever the raster's size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import GeoError, require
from .reference import GeoReference

__all__ = ["DEFAULT_PERCENTILES", "GeoRaster", "Stretch", "open_raster"]

Box = tuple[int, int, int, int]

DEFAULT_PERCENTILES = (2.0, 98.0)
"""Percentiles mapped to 0 and 255 for rasters that are not 8-bit."""

SAMPLE_PIXELS = 1 << 20
"""Pixels of the reduced read the stretch percentiles are computed from."""


@dataclass(frozen=True)
class Stretch:
    """A linear map of each selected band to 0-255: ``low`` -> 0, ``high`` -> 255, clipped.

    Attributes:
        low: per band, the value mapped to 0.
        high: per band, the value mapped to 255.
        percentiles: the percentiles ``low`` and ``high`` were taken at, or None when given.
    """

    low: tuple[float, ...]
    high: tuple[float, ...]
    percentiles: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if len(self.low) != len(self.high) or not self.low:
            raise GeoError(f"a stretch needs one low and one high per band, got {self}")

    def apply(self, data: np.ndarray) -> np.ndarray:
        """B x h x w values -> B x h x w uint8."""
        out = np.empty(data.shape, np.uint8)
        for i, band in enumerate(data):
            low, high = self.low[i], self.high[i]
            scale = 255.0 / (high - low) if high > low else 0.0
            scaled = (band.astype(np.float32) - np.float32(low)) * np.float32(scale)
            np.clip(scaled + 0.5, 0, 255, out=scaled)
            out[i] = np.nan_to_num(scaled, nan=0.0)
        return out

    def describe(self) -> str:
        ranges = ", ".join(f"{lo:g}..{hi:g}" for lo, hi in zip(self.low, self.high))
        if self.percentiles is None:
            return f"values {ranges} -> 0..255"
        lo, hi = self.percentiles
        return f"percentiles {lo:g}..{hi:g} = {ranges} -> 0..255"


def open_raster(
    path: str | Path,
    *,
    bands: Sequence[int] | None = None,
    stretch: tuple[float, float] | Stretch | None = None,
    cache_mb: int = 64,
) -> GeoRaster:
    """Open a raster for segmentation (see :class:`GeoRaster`)."""
    return GeoRaster(path, bands=bands, stretch=stretch, cache_mb=cache_mb)


class GeoRaster:
    """An open raster read window by window as RGB uint8 (a context manager; :meth:`close`).

    Args:
        path: a GeoTIFF / COG or any raster GDAL opens.
        bands: 1-based band numbers, one (grey) or three (RGB); default as described above.
        stretch: ``(low, high)`` percentiles mapped to 0 and 255, or a :class:`Stretch`; None:
            8-bit rasters as they are, others at :data:`DEFAULT_PERCENTILES`.
        cache_mb: GDAL block cache while the raster is open.

    Raises:
        GeoError: a file that is not a raster, a band it lacks, a data type that is not a
            number, percentiles out of order, a raster with no valid pixel to stretch.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        bands: Sequence[int] | None = None,
        stretch: tuple[float, float] | Stretch | None = None,
        cache_mb: int = 64,
    ) -> None:
        rasterio = require("rasterio")
        self.path = Path(path)
        self.name = self.path.name
        self._rasterio = rasterio
        self._cache_mb = int(cache_mb)
        self._dataset = None
        try:
            with self._gdal():
                self._dataset = _open(rasterio, self.path)
            self.reference = GeoReference.from_dataset(self._dataset)
            self.bands = _choose_bands(self._dataset, bands, self.name)
            self.dtype = str(self._dataset.dtypes[self.bands[0] - 1])
            _check_dtype(self.dtype, self.name)
            self.nodata_masked = _has_masks(self._dataset, self.bands, self.dtype)
            self.stretch = self._stretch_for(stretch)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ properties
    @property
    def height(self) -> int:
        return self.reference.height

    @property
    def width(self) -> int:
        return self.reference.width

    @property
    def band_count(self) -> int:
        return int(self._dataset.count)

    def describe(self) -> str:
        """One line: size, bands, type, CRS, pixel size, stretch and nodata."""
        ref = self.reference
        stretch = "none (8-bit)" if self.stretch is None else self.stretch.describe()
        return (
            f"{self.name}: {ref.width} x {ref.height} px, {self.band_count} band(s) "
            f"{self.dtype}, {ref.crs_name}, pixel {ref.pixel_size:g}; using band(s) "
            f"{','.join(map(str, self.bands))}; stretch {stretch}; nodata "
            f"{'masked' if self.nodata_masked else 'none'}"
        )

    # ------------------------------------------------------------------ reading
    def read(self, box: Box) -> np.ndarray | None:
        """RGB uint8 of pixels ``box = (x0, y0, x1, y1)``, nodata black; None when the window
        has no valid pixel (so tiled everything mode skips it)."""
        rgb, valid = self.read_rgb(box)
        if valid is not None and not valid.any():
            return None
        return rgb

    def read_rgb(
        self, box: Box, out_shape: tuple[int, int] | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``(rgb, valid)`` of ``box``, optionally resampled (nearest) to ``out_shape`` (h, w).

        ``valid`` is an h x w bool array, or None when the raster has no nodata at all.
        """
        data = self._read_bands(box, out_shape)
        valid = self._valid(box, data, out_shape)
        pixels = data if self.stretch is None else self.stretch.apply(data)
        if pixels.dtype != np.uint8:
            pixels = pixels.astype(np.uint8)
        if valid is not None:
            pixels[:, ~valid] = 0
        planes = list(pixels) if len(pixels) == 3 else [pixels[0]] * 3
        return cv2.merge(planes), valid

    def valid(self, box: Box, out_shape: tuple[int, int] | None = None) -> np.ndarray | None:
        """h x w bool: pixels of ``box`` that are not nodata; None when all are valid."""
        if not self.nodata_masked:
            return None
        data = self._read_bands(box, out_shape) if _is_float(self.dtype) else None
        return self._valid(box, data, out_shape)

    def _window(self, box: Box) -> Any:
        from rasterio.windows import Window

        x0, y0, x1, y1 = box
        if not (0 <= x0 < x1 <= self.width and 0 <= y0 < y1 <= self.height):
            raise GeoError(f"window {box} is outside {self.name} ({self.width} x {self.height} px)")
        return Window(x0, y0, x1 - x0, y1 - y0)

    def _gdal(self) -> Any:
        """GDAL settings of every read: the block cache held to ``cache_mb``."""
        return self._rasterio.Env(GDAL_CACHEMAX=self._cache_mb)

    def _read_bands(self, box: Box, out_shape: tuple[int, int] | None) -> np.ndarray:
        shape = None if out_shape is None else (len(self.bands), *out_shape)
        with self._gdal():
            return self._dataset.read(list(self.bands), window=self._window(box), out_shape=shape)

    def _valid(
        self, box: Box, data: np.ndarray | None, out_shape: tuple[int, int] | None
    ) -> np.ndarray | None:
        if not self.nodata_masked:
            return None
        shape = None if out_shape is None else (len(self.bands), *out_shape)
        with self._gdal():
            masks = self._dataset.read_masks(
                list(self.bands), window=self._window(box), out_shape=shape
            )
        valid = masks.min(axis=0) > 0
        if data is not None and _is_float(self.dtype):
            valid &= np.isfinite(data).all(axis=0)
        return valid

    # ------------------------------------------------------------------ stretch
    def _stretch_for(self, stretch: tuple[float, float] | Stretch | None) -> Stretch | None:
        if isinstance(stretch, Stretch):
            if len(stretch.low) != len(self.bands):
                raise GeoError(
                    f"the stretch has {len(stretch.low)} band(s) but {len(self.bands)} "
                    f"band(s) of {self.name} are used"
                )
            return stretch
        if stretch is None:
            if self.dtype == "uint8":
                return None
            stretch = DEFAULT_PERCENTILES
        low, high = (float(v) for v in stretch)
        if not (0.0 <= low < high <= 100.0):
            raise GeoError(
                f"stretch percentiles must satisfy 0 <= low < high <= 100, got {low:g},{high:g}"
            )
        return self._percentile_stretch(low, high)

    def _percentile_stretch(self, low: float, high: float) -> Stretch:
        factor = max(1, math.ceil(math.sqrt(self.width * self.height / SAMPLE_PIXELS)))
        shape = (max(1, self.height // factor), max(1, self.width // factor))
        box = (0, 0, self.width, self.height)
        data = self._read_bands(box, shape)
        valid = self._valid(box, data, shape)
        finite = np.isfinite(data).all(axis=0) if _is_float(self.dtype) else None
        keep = valid if valid is not None else finite
        lows, highs = [], []
        for band, values in zip(self.bands, data):
            chosen = values if keep is None else values[keep]
            if chosen.size == 0:
                raise GeoError(f"{self.name} band {band} has no valid pixel (all nodata)")
            lo, hi = np.percentile(chosen.astype(np.float64), [low, high])
            lows.append(float(lo))
            highs.append(float(hi))
        return Stretch(tuple(lows), tuple(highs), (low, high))

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        dataset = getattr(self, "_dataset", None)
        if dataset is not None:
            dataset.close()
            self._dataset = None

    def __enter__(self) -> GeoRaster:  # noqa: PYI034 - Self needs Python 3.11
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open(rasterio: Any, path: Path) -> Any:
    if str(path).startswith("/vsi"):  # GDAL's virtual files (in memory, archives)
        try:
            return rasterio.open(str(path))
        except rasterio.errors.RasterioIOError as exc:
            raise GeoError(f"cannot read {path.name} as a raster: {exc}") from exc
    if not path.exists():
        raise GeoError(f"raster not found: {path}")
    if path.is_dir():
        raise GeoError(f"{path} is a folder, not a raster file")
    try:
        return rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise GeoError(f"cannot read {path.name} as a raster: {exc}") from exc


def _choose_bands(dataset: Any, bands: Sequence[int] | None, name: str) -> tuple[int, ...]:
    count = int(dataset.count)
    if bands is not None:
        chosen = tuple(int(b) for b in bands)
        if len(chosen) not in (1, 3):
            raise GeoError(
                f"give 1 band (grey) or 3 bands (red, green, blue), got {len(chosen)}: "
                f"{','.join(map(str, chosen))}"
            )
        for band in chosen:
            if not 1 <= band <= count:
                span = "band 1" if count == 1 else f"bands 1-{count}"
                raise GeoError(f"band {band} does not exist: {name} has {span}")
        return chosen
    from rasterio.enums import ColorInterp

    interp = list(dataset.colorinterp)
    colours = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
    if all(c in interp for c in colours):
        return tuple(interp.index(c) + 1 for c in colours)
    colour_bands = [i + 1 for i, c in enumerate(interp) if c != ColorInterp.alpha]
    return tuple(colour_bands[:3]) if len(colour_bands) >= 3 else tuple((colour_bands or [1])[:1])


def _check_dtype(dtype: str, name: str) -> None:
    if dtype.startswith("complex"):
        raise GeoError(f"{name} holds {dtype} values; only real numbers can be shown to a model")


def _is_float(dtype: str) -> bool:
    return dtype.startswith("float")


def _has_masks(dataset: Any, bands: tuple[int, ...], dtype: str) -> bool:
    from rasterio.enums import MaskFlags

    flags = dataset.mask_flag_enums
    masked = any(MaskFlags.all_valid not in flags[b - 1] for b in bands)
    return masked or _is_float(dtype)
