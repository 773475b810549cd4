"""Click or box in map coordinates on a raster of any size; one encoding serves many prompts.

:class:`GeoPredictor` wraps one engine :class:`~tijeras.engine.predictor.Predictor`. A prompt
is answered from a *window* of the raster: the whole raster when it fits the ``context`` (1024
pixels by default, the model's own input side), else a ``context`` x ``context`` window at
full resolution centred on the prompts (larger, read at reduced resolution, when a box needs
more room). The window's embedding is kept: every later prompt that falls well inside it is
decoded against the same embedding, with no new encoding, and the last few windows' embeddings
are kept too (``cache_windows``). :attr:`GeoPredictor.encodings` counts the encoder runs.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import GeoError, require
from .layer import GeoFeature, GeoLayer
from .prompts import PixelPrompts, to_pixels
from .raster import GeoRaster
from .reference import GeoReference
from .vectorize import AreaMeter, mask_geometry, to_map

__all__ = ["GeoPredictor", "Window"]


@dataclass(frozen=True)
class Window:
    """Raster pixels ``[x0, x1) x [y0, y1)`` read at ``scale`` raster pixels per image pixel."""

    x0: int
    y0: int
    x1: int
    y1: int
    scale: float = 1.0

    @property
    def shape(self) -> tuple[int, int]:
        """(h, w) of the image read."""
        return (
            max(1, round((self.y1 - self.y0) / self.scale)),
            max(1, round((self.x1 - self.x0) / self.scale)),
        )

    @property
    def steps(self) -> tuple[float, float]:
        """Raster pixels per image pixel along x and y."""
        h, w = self.shape
        return (self.x1 - self.x0) / w, (self.y1 - self.y0) / h

    def holds(
        self, extent: tuple[float, float, float, float], margin: float, size: tuple[int, int]
    ) -> bool:
        """Whether ``extent`` lies inside, ``margin`` pixels from every edge that is not the
        raster's (``size`` = raster height, width)."""
        x0, y0, x1, y1 = extent
        left = self.x0 if self.x0 == 0 else self.x0 + margin
        top = self.y0 if self.y0 == 0 else self.y0 + margin
        right = self.x1 if self.x1 == size[1] else self.x1 - margin
        bottom = self.y1 if self.y1 == size[0] else self.y1 - margin
        return left <= x0 and top <= y0 and x1 <= right and y1 <= bottom


class GeoPredictor:
    """Segment objects of a raster from prompts in map coordinates.

    Args:
        model: a tijeras model (``tijeras.load_model``).
        raster: an open :class:`~tijeras.geo.raster.GeoRaster` (its bands and stretch apply).
        context: side in raster pixels of the window the model sees around the prompts.
        cache_windows: how many windows' embeddings to keep.
    """

    def __init__(
        self, model: Any, raster: GeoRaster, *, context: int = 1024, cache_windows: int = 4
    ) -> None:
        from ..engine.predictor import Predictor

        if context < 64:
            raise GeoError(f"context must be at least 64 pixels, got {context}")
        self.raster = raster
        self.context = int(context)
        self.predictor = Predictor(model, cache_size=0)
        self.window: Window | None = None
        self.encodings = 0
        self._valid: np.ndarray | None = None
        self._embeddings: OrderedDict[Window, tuple[Any, np.ndarray | None]] = OrderedDict()
        self._capacity = max(1, cache_windows)

    def predict(
        self,
        points: Any = None,
        labels: Any = None,
        box: Any = None,
        *,
        crs: str | None = None,
        multimask: bool | None = None,
        simplify: float | None = None,
    ) -> GeoLayer:
        """The object at the prompts as a layer in the raster's CRS.

        Args:
            points: N x 2 ``x, y`` in ``crs`` (default the raster's CRS).
            labels: N labels, 1 foreground (default) or 0 background.
            box: ``x0, y0, x1, y1`` in ``crs``.
            crs: the prompts' CRS, e.g. ``"EPSG:4326"`` (x = longitude).
            multimask: all candidates (ids 1..3, best score first) instead of the best; the
                default is Meta's: three candidates for a single point, the best one kept.
            simplify: outline tolerance in map units.

        Raises:
            GeoError: a prompt outside the raster or on nodata, a bad CRS.
        """
        pixels = to_pixels(
            self.raster.reference,
            points=points,
            labels=labels,
            box=box,
            crs=crs,
            name=self.raster.name,
        )
        window = self._focus(pixels)
        self._check_nodata(pixels, window)
        local = _in_window(pixels, window)
        single = local.points is not None and len(local.points) == 1 and local.box is None
        prediction = self.predictor.predict(
            local.points, local.labels, local.box, multimask_output=bool(multimask) or single
        )
        order = np.argsort(-prediction.scores, kind="stable")
        chosen = order if multimask else order[:1]
        reference = self.raster.reference.window(
            window.x0, window.y0, window.x1, window.y1, window.shape
        )
        features = []
        for index in chosen:
            mask = prediction.masks[index]
            if self._valid is not None:
                mask = mask & self._valid
            feature = _feature(
                mask,
                float(prediction.scores[index]),
                reference,
                window,
                len(features) + 1,
                simplify,
            )
            if feature is not None:
                features.append(feature)
        return GeoLayer(tuple(features), self.raster.reference)

    # ------------------------------------------------------------------ windows
    def _focus(self, pixels: PixelPrompts) -> Window:
        """Make the window holding the prompts current, encoding it only when needed."""
        extent = pixels.extent()
        size = (self.raster.height, self.raster.width)
        margin = self.context / 8
        current = self.window
        if current is not None and current.holds(extent, margin, size):
            return current
        for window in self._embeddings:
            if window.holds(extent, margin, size):
                return self._use(window)
        return self._use(self._window_for(extent))

    def _window_for(self, extent: tuple[float, float, float, float]) -> Window:
        height, width = self.raster.height, self.raster.width
        if max(height, width) <= self.context:
            return Window(0, 0, width, height)
        x0, y0, x1, y1 = extent
        need = max(x1 - x0, y1 - y0) * 1.25 + self.context / 4
        side = int(min(max(self.context, math.ceil(need)), max(height, width)))
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        wx0 = int(min(max(0, round(cx - side / 2)), max(0, width - side)))
        wy0 = int(min(max(0, round(cy - side / 2)), max(0, height - side)))
        window = Window(wx0, wy0, min(width, wx0 + side), min(height, wy0 + side))
        scale = max(window.x1 - window.x0, window.y1 - window.y0) / self.context
        return Window(window.x0, window.y0, window.x1, window.y1, max(1.0, scale))

    def _use(self, window: Window) -> Window:
        cached = self._embeddings.get(window)
        if cached is None:
            box = (window.x0, window.y0, window.x1, window.y1)
            shape = None if window.scale == 1.0 else window.shape
            rgb, valid = self.raster.read_rgb(box, shape)
            embedding = self.predictor.set_image(rgb)
            self.encodings += 1
            cached = (embedding, valid)
            self._embeddings[window] = cached
            while len(self._embeddings) > self._capacity:
                self._embeddings.popitem(last=False)
        else:
            self._embeddings.move_to_end(window)
            self.predictor.set_embedding(cached[0])
        self.window, self._valid = window, cached[1]
        return window

    def _check_nodata(self, pixels: PixelPrompts, window: Window) -> None:
        if self._valid is None or pixels.points is None:
            return
        h, w = self._valid.shape
        sx, sy = window.steps
        for (x, y), label in zip(pixels.points, pixels.labels):
            col = min(w - 1, int((x - window.x0) / sx))
            row = min(h - 1, int((y - window.y0) / sy))
            if label == 1 and not self._valid[row, col]:
                raise GeoError(
                    f"the point at pixel {x:.1f},{y:.1f} of {self.raster.name} falls on nodata"
                )


def _in_window(pixels: PixelPrompts, window: Window) -> PixelPrompts:
    h, w = window.shape
    offset = np.array([window.x0, window.y0], np.float64)
    step = np.array(window.steps, np.float64)
    points = box = None
    if pixels.points is not None:
        points = np.clip((pixels.points - offset) / step, 0, [w, h])
    if pixels.box is not None:
        box = np.clip((pixels.box - np.tile(offset, 2)) / np.tile(step, 2), 0, [w, h, w, h])
    return PixelPrompts(points, pixels.labels, box)


def _feature(
    mask: np.ndarray,
    score: float,
    reference: GeoReference,
    window: Window,
    index: int,
    simplify: float | None,
) -> GeoFeature | None:
    shapely = require("shapely")
    pixels = mask_geometry(mask)
    if pixels is None:
        return None
    geometry = to_map(pixels, reference)
    square_metres = AreaMeter(reference).square_metres(geometry)
    if simplify:
        geometry = shapely.simplify(geometry, simplify, preserve_topology=True)
    sx, sy = window.steps
    area_px = round(pixels.area * sx * sy)
    return GeoFeature(
        geometry=geometry,
        id=index,
        score=score,
        stability=None,
        area=float(pixels.area) * reference.pixel_area,
        area_m2=square_metres,
        area_px=area_px,
    )
