"""Read images from files, bytes, PIL images or arrays into H x W x 3 uint8 RGB arrays.

Every image the package segments goes through :func:`load_image`, so the rest of the code
only ever sees one layout: a C-contiguous H x W x 3 ``uint8`` array in RGB order.

Conversion rules:

* EXIF orientation is applied to files, bytes and PIL images (arrays are taken as they are).
* Grayscale (``1``, ``L``) is replicated to three channels.
* Transparency (``RGBA``, ``LA``, ``PA``, palette or colour-key transparency, H x W x 4
  arrays) is alpha-composited over :data:`WHITE_BACKGROUND`, so see-through areas become
  white rather than whatever colour happens to be stored under them.
* Other colour spaces (palette, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``) are converted to RGB.
* 16-bit data (``I;16`` modes, ``I`` with values in 0..65535, ``uint16`` arrays) is
  scaled to 8 bits as ``round(value / 257)``, which maps 0..65535 exactly onto 0..255.
* Floating-point data (mode ``F``, float arrays) is read as 0..1 when its maximum is at
  most 1 and as 0..255 otherwise, then clipped to 0..255 and rounded.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, TypeAlias

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from tijeras.errors import ImageError, ImageTooLargeError

__all__ = [
    "WHITE_BACKGROUND",
    "ImageSource",
    "PathLike",
    "composite_over_background",
    "load_image",
    "read_image_size",
]

WHITE_BACKGROUND: tuple[int, int, int] = (255, 255, 255)
"""RGB colour (0-255) that transparent pixels are composited over."""

PathLike: TypeAlias = str | os.PathLike[str]
ImageSource: TypeAlias = str | os.PathLike[str] | bytes | Image.Image | np.ndarray

_ORIENTATION_TAG = ExifTags.Base.Orientation
_ORIENTATIONS_SWAPPING_AXES = frozenset({5, 6, 7, 8})
_PNG_SIGNATURE_LENGTH = 8
_UINT16_TO_UINT8 = 257
_GRAY_MODES = frozenset({"1", "L"})
_EIGHT_BIT_MODES = frozenset({"1", "L", "P", "RGB", "LA", "PA", "RGBA", "RGBa"})
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})
_CONVERTIBLE_TO_RGB = frozenset({"P", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"})
_ARRAY_CHANNELS = frozenset({1, 3, 4})
_PIL_IMAGE_LABEL = "PIL image"


def load_image(source: ImageSource) -> np.ndarray:
    """Load an image as an RGB array, whatever form it comes in.

    Args:
        source: A file path (``str`` or ``os.PathLike``), the encoded bytes of an image
            file, a ``PIL.Image.Image``, or a numpy array shaped H x W, H x W x 1,
            H x W x 3 or H x W x 4 (RGBA) of dtype ``uint8``, ``uint16``, ``bool`` or float.

    Returns:
        A new, writable, C-contiguous H x W x 3 uint8 RGB array. For files, bytes and PIL
        images, H and W are those after applying the EXIF orientation.

    Raises:
        ImageError: The file is missing, a directory, not an image, truncated or has too
            many pixels; the array has an unsupported shape or dtype; or the source is of
            an unsupported type.
    """
    if isinstance(source, np.ndarray):
        return _array_to_rgb(source, _describe_array(source))
    if isinstance(source, Image.Image):
        with _pil_errors(_PIL_IMAGE_LABEL):
            upright = ImageOps.exif_transpose(source)
        return _pil_to_rgb(upright, _PIL_IMAGE_LABEL)
    stream, label = _open_stream(source)
    with stream, _pil_errors(label), Image.open(stream) as image:
        image.load()  # decode here, so that truncated data is reported as an ImageError
        upright = ImageOps.exif_transpose(image)
    return _pil_to_rgb(upright, label)


def read_image_size(source: ImageSource) -> tuple[int, int]:
    """Read the size an image will have once loaded, without decoding its pixels.

    For paths and bytes only the file header and the EXIF orientation tag are read, so a
    file with truncated pixel data still reports its size here; :func:`load_image` is the
    function that rejects it.

    Args:
        source: Anything :func:`load_image` accepts.

    Returns:
        ``(height, width)`` after EXIF orientation, i.e. the first two dimensions of the
        array :func:`load_image` would return.

    Raises:
        ImageError: The file is missing, a directory or not an image, or the array has an
            unsupported shape or dtype.
    """
    if isinstance(source, np.ndarray):
        _check_array_layout(source, _describe_array(source))
        return int(source.shape[0]), int(source.shape[1])
    if isinstance(source, Image.Image):
        with _pil_errors(_PIL_IMAGE_LABEL):
            orientation = _orientation(source.getexif())
        return _upright_size(source.size, orientation)
    stream, label = _open_stream(source)
    with stream, _pil_errors(label), Image.open(stream) as image:
        orientation = _header_orientation(image, stream)
        size = image.size
    return _upright_size(size, orientation)


def composite_over_background(
    rgba: np.ndarray, background: tuple[int, int, int] = WHITE_BACKGROUND
) -> np.ndarray:
    """Alpha-composite an RGBA array over a solid colour.

    Args:
        rgba: H x W x 4 uint8 array, straight (not premultiplied) alpha.
        background: RGB colour, 0-255 per channel.

    Returns:
        H x W x 3 uint8 array, ``round(rgb * a + background * (1 - a))`` with ``a`` in 0..1.
    """
    alpha = rgba[..., 3:].astype(np.uint16)
    colour = rgba[..., :3].astype(np.uint16)
    backdrop = np.asarray(background, dtype=np.uint16)
    # max 255 * 255 + 127 fits in uint16; the +127 turns the floor division into rounding
    blended = (colour * alpha + backdrop * (255 - alpha) + 127) // 255
    return blended.astype(np.uint8)


# --- files and bytes -----------------------------------------------------------------------


def _open_stream(source: object) -> tuple[BinaryIO, str]:
    """Open a path or wrap bytes as a binary stream, with a label for error messages."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return io.BytesIO(data), f"<{len(data)} bytes of image data>"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        _check_image_path(path)
        with _pil_errors(str(path)):
            return path.open("rb"), str(path)
    raise ImageError(
        f"cannot load an image from a {type(source).__name__}: "
        "expected a path, bytes, a PIL image or a numpy array"
    )


def _check_image_path(path: Path) -> None:
    """Raise an ImageError when ``path`` does not name an existing regular file."""
    if not path.exists():
        raise ImageError(f"image file not found: {path}")
    if path.is_dir():
        raise ImageError(f"expected an image file, got a directory: {path}")


@contextmanager
def _pil_errors(label: str) -> Iterator[None]:
    """Turn the errors Pillow raises on unreadable input into one-line ImageErrors."""
    try:
        yield
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"image has too many pixels: {label} ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"not an image file (unrecognised format): {label}") from exc
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise ImageError(f"cannot read image: {label} ({exc})") from exc


# --- EXIF orientation --------------------------------------------------------------------------


def _header_orientation(image: Image.Image, stream: BinaryIO) -> int:
    """EXIF orientation of a lazily opened image, read without decoding its pixels."""
    if image.format == "PNG" and "exif" not in image.info:
        # Pillow's PNG plugin decodes the whole image to look for an eXIf chunk placed after
        # the pixel data; walking the chunk headers finds it without decompressing anything.
        image.info["exif"] = _find_png_chunk(stream, b"eXIf") or b""
    return _orientation(image.getexif())


def _find_png_chunk(stream: BinaryIO, chunk_type: bytes) -> bytes | None:
    """Return the payload of the first PNG chunk of this type, skipping over all others."""
    stream.seek(_PNG_SIGNATURE_LENGTH)
    while True:
        header = stream.read(8)
        if len(header) < 8:
            return None
        length, kind = struct.unpack(">I4s", header)
        if kind == chunk_type:
            return stream.read(length)
        if kind == b"IEND":
            return None
        stream.seek(length + 4, os.SEEK_CUR)  # payload and CRC


def _orientation(exif: Image.Exif) -> int:
    """The EXIF orientation value (1..8), 1 when absent or invalid."""
    value = exif.get(_ORIENTATION_TAG, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _upright_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """Convert Pillow's stored ``(width, height)`` to ``(height, width)`` once oriented."""
    width, height = size
    if orientation in _ORIENTATIONS_SWAPPING_AXES:
        width, height = height, width
    return height, width


# --- PIL images ----------------------------------------------------------------------------


def _pil_to_rgb(image: Image.Image, label: str) -> np.ndarray:
    """Convert a decoded PIL image of any supported mode to H x W x 3 uint8 RGB."""
    if image.width == 0 or image.height == 0:
        raise ImageError(f"image has no pixels: {label} (size {image.width} x {image.height})")
    return _array_to_rgb(_pil_to_array(image, label), label)


def _pil_to_array(image: Image.Image, label: str) -> np.ndarray:
    """Return the pixels in a layout and dtype that :func:`_array_to_rgb` understands."""
    mode = image.mode
    if mode in _EIGHT_BIT_MODES and image.has_transparency_data:
        return np.asarray(image.convert("RGBA"))
    if mode in _GRAY_MODES or mode == "RGB":
        return np.asarray(image)
    if mode in _CONVERTIBLE_TO_RGB:
        return np.asarray(image.convert("RGB"))
    if mode in _SIXTEEN_BIT_MODES:
        return np.asarray(image).astype(np.uint16)  # also makes big-endian I;16B native
    if mode == "I":
        return _int32_to_uint16(np.asarray(image), label)
    if mode == "F":
        return np.asarray(image)
    raise ImageError(f"unsupported image mode {mode!r}: {label}")


def _int32_to_uint16(values: np.ndarray, label: str) -> np.ndarray:
    """Accept a 32-bit integer image only when it holds 16-bit values."""
    low, high = int(values.min()), int(values.max())
    if low < 0 or high > np.iinfo(np.uint16).max:
        raise ImageError(
            f"32-bit integer image has values outside 0..65535 ({low}..{high}): {label}"
        )
    return values.astype(np.uint16)


# --- arrays ------------------------------------------------------------------------------


def _describe_array(array: np.ndarray) -> str:
    """Name an array by shape and dtype, for error messages."""
    return f"array of shape {tuple(array.shape)} and dtype {array.dtype}"


def _check_array_layout(array: np.ndarray, label: str) -> None:
    """Raise an ImageError unless the array has an image shape and a supported dtype."""
    channels_ok = array.ndim == 2 or (array.ndim == 3 and array.shape[2] in _ARRAY_CHANNELS)
    if not channels_ok:
        raise ImageError(
            f"unsupported image {label}: expected H x W, H x W x 1, H x W x 3 or H x W x 4"
        )
    if array.size == 0:
        raise ImageError(f"unsupported image {label}: the image is empty")
    if not _is_supported_dtype(array.dtype):
        raise ImageError(f"unsupported image {label}: expected dtype uint8, uint16, bool or float")


def _is_supported_dtype(dtype: np.dtype) -> bool:
    """True for the dtypes :func:`_to_uint8` knows how to scale (any byte order)."""
    return dtype.kind in "bf" or (dtype.kind == "u" and dtype.itemsize in (1, 2))


def _array_to_rgb(array: np.ndarray, label: str) -> np.ndarray:
    """Convert an image array of any supported layout and dtype to H x W x 3 uint8."""
    _check_array_layout(array, label)
    pixels = _to_uint8(array, label)
    if pixels.ndim == 2:
        pixels = pixels[..., np.newaxis]
    if pixels.shape[2] == 4:
        rgb = composite_over_background(pixels)
    else:
        rgb = np.broadcast_to(pixels, (*pixels.shape[:2], 3))
    return np.array(rgb, dtype=np.uint8, order="C", copy=True)


def _to_uint8(array: np.ndarray, label: str) -> np.ndarray:
    """Scale pixel values of a supported dtype to uint8, keeping the shape."""
    kind, itemsize = array.dtype.kind, array.dtype.itemsize
    if kind == "u" and itemsize == 1:
        return array
    if kind == "b":
        return array.astype(np.uint8) * np.uint8(255)
    if kind == "u":
        # (v + 128) // 257 == round(v / 257); 257 is odd, so there are no ties to break
        return ((array.astype(np.uint32) + 128) // _UINT16_TO_UINT8).astype(np.uint8)
    return _float_to_uint8(array, label)


def _float_to_uint8(array: np.ndarray, label: str) -> np.ndarray:
    """Map floats read as 0..1 (maximum at most 1) or as 0..255 to uint8."""
    if not np.isfinite(array).all():
        raise ImageError(f"unsupported image {label}: it contains NaN or infinite values")
    values = array.astype(np.float32)
    if float(values.max()) <= 1.0:
        values = values * np.float32(255)
    return np.rint(np.clip(values, 0, 255)).astype(np.uint8)
