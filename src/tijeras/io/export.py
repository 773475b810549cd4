"""Turn masks into results: bounding boxes, mask PNGs, cut-outs, overlays, inpainting masks,
stickers and the photo with the object erased.

A mask here is an H x W array whose non-zero (or ``True``) pixels belong to the object:
``bool``, 0/1 or 0/255 integers and floats are all accepted. Images are anything
:func:`tijeras.io.image.load_image` accepts and are converted to H x W x 3 uint8 RGB first.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeAlias

import cv2
import numpy as np
from PIL import Image

from tijeras.errors import ImageError
from tijeras.io.image import ImageSource, PathLike, composite_over_background, load_image

__all__ = [
    "OUTLINE_THICKNESS",
    "PALETTE",
    "STICKER_SIZE",
    "cutout",
    "erase_object",
    "inpaint_mask",
    "mask_to_box",
    "overlay",
    "save_image",
    "save_mask_png",
    "sticker",
]

RGB: TypeAlias = tuple[int, int, int]
Box: TypeAlias = tuple[int, int, int, int]

PALETTE: tuple[RGB, ...] = (
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (0, 128, 128),
    (170, 110, 40),
)
"""Distinct, saturated RGB colours given to masks in order (and cycled) by :func:`overlay`."""

OUTLINE_THICKNESS = 2
"""Width in pixels of the mask outlines drawn by :func:`overlay`."""

_SAVE_FORMATS: dict[str, str] = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
_SAVE_OPTIONS: dict[str, dict[str, Any]] = {
    "PNG": {},
    "JPEG": {"quality": 95},
    "WEBP": {"quality": 95},
}
_SAVABLE_CHANNELS = frozenset({3, 4})


def mask_to_box(mask: np.ndarray) -> Box | None:
    """Bounding box of a mask's foreground pixels.

    Args:
        mask: H x W mask (bool, or numbers where non-zero means foreground).

    Returns:
        ``(x0, y0, x1, y1)`` with x0/y0 the first foreground column/row and x1/y1 one past
        the last (so ``mask[y0:y1, x0:x1]`` holds every foreground pixel), or ``None`` when
        the mask is empty.

    Raises:
        ImageError: The mask is not a non-empty H x W numeric or bool array.
    """
    region = _as_mask(mask)
    columns = np.flatnonzero(region.any(axis=0))
    if columns.size == 0:
        return None
    rows = np.flatnonzero(region.any(axis=1))
    return int(columns[0]), int(rows[0]), int(columns[-1]) + 1, int(rows[-1]) + 1


def save_mask_png(mask: np.ndarray, path: PathLike) -> None:
    """Write a mask as a single-channel 8-bit PNG holding only 0 and 255.

    The file is always PNG, whatever the suffix of ``path``; parent folders are created.

    Args:
        mask: H x W mask (bool, or numbers where non-zero means foreground).
        path: Where to write the PNG.

    Raises:
        ImageError: The mask is not H x W, or the file cannot be written.
    """
    pixels = _as_mask(mask).astype(np.uint8) * np.uint8(255)
    _write(Image.fromarray(pixels), Path(path), "PNG")


def cutout(image: ImageSource, mask: np.ndarray, crop: bool = True, pad: int = 0) -> np.ndarray:
    """Cut an object out of an image as RGBA, transparent outside the mask.

    Args:
        image: H x W image, anything :func:`tijeras.io.image.load_image` accepts.
        mask: H x W mask of the object, same size as the image.
        crop: Crop the result to the mask's bounding box.
        pad: Pixels of margin kept around the bounding box when cropping, clamped to the
            image borders. Must be >= 0.

    Returns:
        h x w x 4 uint8 RGBA array: colour from the image, alpha 255 inside the mask and 0
        outside. ``(h, w) == (H, W)`` when ``crop`` is False.

    Raises:
        ImageError: Sizes differ, ``pad`` is negative, or the mask is empty.
    """
    rgb = load_image(image)
    region = _as_mask(mask)
    _check_same_size(rgb, region)
    margin = _non_negative_int(pad, "pad")
    box = mask_to_box(region)
    if box is None:
        raise ImageError("the mask is empty: nothing to cut out")
    rgba = np.dstack((rgb, region.astype(np.uint8) * np.uint8(255)))
    if not crop:
        return rgba
    x0, y0, x1, y1 = _pad_box(box, margin, region.shape)
    return np.ascontiguousarray(rgba[y0:y1, x0:x1])


def overlay(
    image: ImageSource,
    masks: np.ndarray | Sequence[np.ndarray],
    alpha: float = 0.5,
    colors: Sequence[RGB] | None = None,
    outline: bool = True,
) -> np.ndarray:
    """Draw masks over an image as translucent colour fills with solid outlines.

    Masks are filled in order (later ones over earlier ones); outlines are drawn last, so
    every outline stays visible.

    Args:
        image: H x W image, anything :func:`tijeras.io.image.load_image` accepts.
        masks: One H x W mask, an N x H x W array, or a sequence of H x W masks.
        alpha: Opacity of the fills, from 0 (invisible) to 1 (opaque).
        colors: RGB colour (0-255) per mask, cycled when there are fewer colours than
            masks; :data:`PALETTE` when None.
        outline: Also draw each mask's contours (holes included), :data:`OUTLINE_THICKNESS`
            pixels wide, centred on the mask border.

    Returns:
        H x W x 3 uint8 RGB array; the input is not modified.

    Raises:
        ImageError: A mask is not H x W or differs in size from the image, ``alpha`` is
            outside 0..1, or a colour is not three values in 0..255.
    """
    canvas = load_image(image)
    regions = _as_mask_list(masks)
    for region in regions:
        _check_same_size(canvas, region)
    opacity = _check_alpha(alpha)
    palette = _check_colours(PALETTE if colors is None else colors)
    shades = [palette[index % len(palette)] for index in range(len(regions))]
    for region, shade in zip(regions, shades, strict=True):
        _fill(canvas, region, shade, opacity)
    if outline:
        for region, shade in zip(regions, shades, strict=True):
            _draw_outline(canvas, region, shade)
    return canvas


def inpaint_mask(mask: np.ndarray, dilate: int = 0) -> np.ndarray:
    """Make the mask an inpainting model expects, optionally grown to cover object edges.

    Args:
        mask: H x W mask (bool, or numbers where non-zero means foreground).
        dilate: Radius in pixels: every pixel within this Euclidean distance of the mask is
            added (a dilation by a disc of that radius). 0 leaves the mask as it is.

    Returns:
        H x W uint8 array holding 0 and 255.

    Raises:
        ImageError: The mask is not H x W, or ``dilate`` is not an integer >= 0.
    """
    pixels = _as_mask(mask).astype(np.uint8) * np.uint8(255)
    radius = _non_negative_int(dilate, "dilate")
    if radius == 0:
        return pixels
    return cv2.dilate(pixels, _disc_kernel(radius))


STICKER_SIZE = 512
"""Side of a sticker in pixels: what messaging apps take (WhatsApp, Telegram, Signal)."""

ERASE_WORK_PIXELS = 250_000
"""Masks larger than this are filled at a reduced scale (bounding the time of a fill)."""


def sticker(
    image: ImageSource,
    mask: np.ndarray,
    size: int = STICKER_SIZE,
    margin: int = 16,
    outline: int = 0,
) -> np.ndarray:
    """The object as a square sticker: centred, scaled to fit, transparent around it.

    Args:
        image: H x W image, anything :func:`tijeras.io.image.load_image` accepts.
        mask: H x W mask of the object, same size as the image.
        size: Side of the square result in pixels (8..4096).
        margin: Transparent pixels kept on every side (0 <= 2 * margin < size); the outline
            is drawn inside the margin.
        outline: Width in pixels of a white outline around the object (0: none), at most
            ``margin``.

    Returns:
        size x size x 4 uint8 RGBA array. The object is resized with premultiplied alpha
        (no colour from the background bleeds into its edges).

    Raises:
        ImageError: Sizes differ, the mask is empty, or an argument is out of range.
    """
    side = _int_in(size, "size", 8, 4096)
    border = _int_in(margin, "margin", 0, (side - 1) // 2)
    ring = _int_in(outline, "outline", 0, border)
    piece = cutout(image, mask, crop=True)
    room = side - 2 * border
    height, width = piece.shape[:2]
    scale = room / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    resized = (
        Image.fromarray(piece, "RGBA")
        .convert("RGBa")
        .resize((new_w, new_h), Image.Resampling.LANCZOS)
    )
    canvas = Image.new("RGBa", (side, side), (0, 0, 0, 0))
    canvas.paste(resized, ((side - new_w) // 2, (side - new_h) // 2))
    result = np.array(canvas.convert("RGBA"))
    if ring:
        _add_outline(result, ring)
    return result


def erase_object(
    image: ImageSource, mask: np.ndarray, dilate: int = 8, radius: int = 3
) -> np.ndarray:
    """The image with the object's pixels filled from their surroundings (OpenCV's Telea
    inpainting). A learned inpainting model fills large areas far better; this needs none.

    Args:
        image: H x W image, anything :func:`tijeras.io.image.load_image` accepts.
        mask: H x W mask of the object, same size as the image.
        dilate: The mask is grown by this many pixels first, so the object's soft edges and
            shadow fringe are filled too (0..500).
        radius: Neighbourhood, in pixels, each filled pixel is taken from (1..50).

    Returns:
        H x W x 3 uint8 RGB array; outside the grown mask it equals the input. Masks larger
        than :data:`ERASE_WORK_PIXELS` are filled at a reduced scale, then scaled back and
        pasted into the grown mask only.

    Raises:
        ImageError: Sizes differ or an argument is out of range.
    """
    rgb = load_image(image)
    region = _as_mask(mask)
    _check_same_size(rgb, region)
    grown = inpaint_mask(region, _int_in(dilate, "dilate", 0, 500))
    reach = _int_in(radius, "radius", 1, 50)
    area = int(np.count_nonzero(grown))
    if area == 0:
        return rgb
    scale = min(1.0, (ERASE_WORK_PIXELS / area) ** 0.5)
    if scale >= 1.0:
        return cv2.inpaint(rgb, grown, reach, cv2.INPAINT_TELEA)
    height, width = region.shape
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(grown, size, interpolation=cv2.INTER_NEAREST)
    small_mask = cv2.dilate(small_mask, np.ones((3, 3), np.uint8))  # cover the rounding
    filled = cv2.resize(
        cv2.inpaint(small, small_mask, max(1, round(reach * scale)), cv2.INPAINT_TELEA),
        (width, height),
        interpolation=cv2.INTER_CUBIC,
    )
    out = rgb.copy()
    inside = grown > 0
    out[inside] = filled[inside]
    return out


def save_image(array: np.ndarray, path: PathLike) -> None:
    """Write a uint8 image array, in the format named by the file suffix.

    Suffixes ``.png``, ``.jpg``/``.jpeg`` and ``.webp`` are understood (any case). JPEG has
    no alpha channel, so an RGBA array saved as JPEG is composited over white first.
    Parent folders are created.

    Args:
        array: H x W (gray), H x W x 3 (RGB) or H x W x 4 (RGBA) uint8 array.
        path: Where to write the image.

    Raises:
        ImageError: The suffix is not supported, the array has another shape or dtype, or
            the file cannot be written.
    """
    target = Path(path)
    file_format = _format_for_suffix(target)
    pixels = _check_savable(np.asarray(array))
    if file_format == "JPEG" and pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = composite_over_background(pixels)
    _write(Image.fromarray(np.ascontiguousarray(pixels)), target, file_format)


# --- validation ----------------------------------------------------------------------------


def _as_mask(mask: Any, name: str = "mask") -> np.ndarray:
    """Validate an H x W mask and return it as a bool array (non-zero is foreground)."""
    array = np.asarray(mask)
    if array.ndim != 2 or array.size == 0 or array.dtype.kind not in "buif":
        raise ImageError(
            f"{name} must be a non-empty H x W array of bools or numbers, "
            f"got shape {tuple(array.shape)} and dtype {array.dtype}"
        )
    if array.dtype.kind == "b":
        return array
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ImageError(f"{name} of shape {tuple(array.shape)} contains NaN or infinite values")
    return array != 0


def _as_mask_list(masks: Any) -> list[np.ndarray]:
    """Accept one H x W mask, an N x H x W array or a sequence of masks."""
    if isinstance(masks, (list, tuple)):
        return [_as_mask(mask, f"mask {index}") for index, mask in enumerate(masks)]
    stack = np.asarray(masks)
    if stack.ndim == 2:
        return [_as_mask(stack)]
    if stack.ndim == 3:
        return [_as_mask(mask, f"mask {index}") for index, mask in enumerate(stack)]
    raise ImageError(
        f"masks must be H x W or N x H x W, got shape {tuple(stack.shape)} and dtype {stack.dtype}"
    )


def _check_same_size(image: np.ndarray, mask: np.ndarray) -> None:
    """Raise an ImageError unless the image and the mask have the same H x W."""
    if image.shape[:2] != mask.shape:
        raise ImageError(
            f"image and mask sizes differ: image shape {tuple(image.shape)}, "
            f"mask shape {tuple(mask.shape)}"
        )


def _non_negative_int(value: Any, name: str) -> int:
    """Return ``value`` as an int, raising an ImageError unless it is an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ImageError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def _int_in(value: Any, name: str, low: int, high: int) -> int:
    """Return ``value`` as an int, raising an ImageError unless it lies in low..high."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ImageError(f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ImageError(f"{name} must be between {low} and {high}, got {value}")
    return int(value)


def _check_alpha(alpha: float) -> float:
    """Return the fill opacity, raising an ImageError unless it lies in 0..1."""
    if not 0.0 <= alpha <= 1.0:
        raise ImageError(f"alpha must be between 0 and 1, got {alpha!r}")
    return float(alpha)


def _check_colours(colours: Sequence[RGB]) -> list[RGB]:
    """Validate RGB triplets in 0..255 and return them as tuples of Python ints."""
    values = np.asarray(colours)
    valid_shape = values.ndim == 2 and values.shape[0] > 0 and values.shape[1] == 3
    if not valid_shape or values.dtype.kind not in "ui" or values.min() < 0 or values.max() > 255:
        raise ImageError(f"colors must be RGB triplets of integers in 0..255, got {colours!r}")
    return [(int(red), int(green), int(blue)) for red, green, blue in values]


def _check_savable(pixels: np.ndarray) -> np.ndarray:
    """Raise an ImageError unless the array is an H x W, H x W x 3 or H x W x 4 uint8 image."""
    layout_ok = pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] in _SAVABLE_CHANNELS)
    if not layout_ok or pixels.size == 0 or pixels.dtype != np.uint8:
        raise ImageError(
            f"cannot save an array of shape {tuple(pixels.shape)} and dtype {pixels.dtype}: "
            "expected uint8 H x W, H x W x 3 or H x W x 4"
        )
    return pixels


def _format_for_suffix(path: Path) -> str:
    """Pillow format name for the file suffix, or an ImageError naming the suffix."""
    suffix = path.suffix.lower()
    if suffix not in _SAVE_FORMATS:
        known = ", ".join(sorted(_SAVE_FORMATS))
        raise ImageError(f"unsupported image suffix {path.suffix!r} in {path}: use one of {known}")
    return _SAVE_FORMATS[suffix]


# --- drawing and writing -------------------------------------------------------------------


def _pad_box(box: Box, pad: int, size: tuple[int, ...]) -> Box:
    """Grow an xyxy box by ``pad`` pixels on each side, clamped to an H x W image."""
    x0, y0, x1, y1 = box
    height, width = size[0], size[1]
    return max(x0 - pad, 0), max(y0 - pad, 0), min(x1 + pad, width), min(y1 + pad, height)


def _fill(canvas: np.ndarray, region: np.ndarray, colour: RGB, alpha: float) -> None:
    """Blend a colour into the masked pixels of an H x W x 3 uint8 canvas, in place."""
    under = canvas[region].astype(np.float32)
    blended = (1.0 - alpha) * under + alpha * np.asarray(colour, dtype=np.float32)
    canvas[region] = np.rint(blended).astype(np.uint8)


def _draw_outline(canvas: np.ndarray, region: np.ndarray, colour: RGB) -> None:
    """Draw every contour of the mask (outer borders and holes) on the canvas, in place."""
    contours, _ = cv2.findContours(region.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(canvas, contours, -1, colour, thickness=OUTLINE_THICKNESS)


def _add_outline(rgba: np.ndarray, width: int) -> None:
    """Put a white band ``width`` pixels wide around the opaque part of an RGBA image, in
    place (under the object: its own edge pixels stay as they are)."""
    alpha = rgba[..., 3]
    band = cv2.dilate(alpha, _disc_kernel(width))
    under = band.astype(np.float32) / 255.0
    over = alpha.astype(np.float32) / 255.0
    total = over + under * (1.0 - over)
    colour = (
        rgba[..., :3].astype(np.float32) * over[..., None]
        + 255.0 * (under * (1.0 - over))[..., None]
    )
    safe = np.where(total > 0, total, 1.0)[..., None]
    rgba[..., :3] = np.rint(colour / safe).astype(np.uint8)
    rgba[..., 3] = np.rint(total * 255.0).astype(np.uint8)


def _disc_kernel(radius: int) -> np.ndarray:
    """(2r + 1) x (2r + 1) uint8 kernel: 1 where x^2 + y^2 <= r^2 around the centre."""
    offsets = np.arange(-radius, radius + 1)
    return (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius**2).astype(np.uint8)


def _write(image: Image.Image, path: Path, file_format: str) -> None:
    """Save a PIL image, creating parent folders; OS errors become ImageErrors."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, format=file_format, **_SAVE_OPTIONS[file_format])
    except OSError as exc:
        raise ImageError(f"cannot write image: {path} ({exc})") from exc
