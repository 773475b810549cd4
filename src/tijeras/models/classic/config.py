"""Parameters of the classical backend (GrabCut prompts, Felzenszwalb everything mode)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClassicConfig:
    """Frozen parameters of :class:`tijeras.classic.model.ClassicModel`.

    Lengths given as fractions are fractions of the longest side of the resized image, so the
    behaviour does not depend on the image's resolution.

    Attributes:
        image_size: longest side of the working image; prompts run GrabCut at this size.
        grabcut_iters: GrabCut iterations (colour-model re-estimations) per run.
        seed_radius: radius of the hard foreground/background disc drawn at each point.
        window_scales: half-sizes of the search windows around the clicks (one candidate each,
            from a part to a whole object) when no box is given.
        window_inner: the probable-foreground core of each window, as a share of its half-size
            (the ring outside it starts as probable background).
        context: margin of background kept around the window or box for the colour models,
            as a fraction of the window's or box's size.
        logit_clip: signed-distance logits are clipped to +-this many working pixels.
        everything_scale: Felzenszwalb's ``scale`` per pixel of one grid cell (the image
            area divided by ``points_per_side**2``).
        everything_sigma: Gaussian smoothing before Felzenszwalb's graph is built.
        everything_min_cell: smallest region kept, as a fraction of one grid cell.
        mask_threshold: logit threshold of the masks (0: positive inside).
    """

    image_size: int = 512
    grabcut_iters: int = 3
    seed_radius: float = 0.006
    window_scales: tuple[float, ...] = (0.06, 0.12, 0.3)
    window_inner: float = 0.75
    context: float = 0.3
    logit_clip: float = 20.0
    everything_scale: float = 1.0
    everything_sigma: float = 0.8
    everything_min_cell: float = 0.5
    mask_threshold: float = 0.0


CLASSIC = ClassicConfig()
