"""Tests of tijeras.io.image: loading images of every supported kind, and the errors."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from tijeras.errors import ImageError, TijerasError
from tijeras.io import WHITE_BACKGROUND, load_image, read_image_size

ORIENTATION = 0x0112


def _rgb_pattern(height: int = 12, width: int = 16) -> np.ndarray:
    """H x W x 3 uint8 image whose every pixel is different."""
    rows, cols = np.mgrid[0:height, 0:width]
    return np.dstack((rows * 10, cols * 10, (rows + cols) * 3)).astype(np.uint8)


def _encode(image: Image.Image, file_format: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=file_format, **params)
    return buffer.getvalue()


def _oriented_jpeg(path: Path, orientation: int) -> None:
    """40 high x 60 wide JPEG, red 16 x 16 block at the stored top-left, EXIF orientation."""
    pixels = np.full((40, 60, 3), 128, np.uint8)
    pixels[:16, :16] = (255, 0, 0)
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    Image.fromarray(pixels).save(path, format="JPEG", quality=95, exif=exif.tobytes())


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        chunks.append((kind, data[offset + 8 : offset + 8 + length]))
        offset += length + 12
    return chunks


def _png_from_chunks(chunks: list[tuple[bytes, bytes]]) -> bytes:
    out = [b"\x89PNG\r\n\x1a\n"]
    for kind, payload in chunks:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        out.append(struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc))
    return b"".join(out)


# --- files of each mode ----------------------------------------------------------------------


def test_rgb_png_round_trips_exactly(tmp_path: Path) -> None:
    pixels = _rgb_pattern()
    path = tmp_path / "rgb.png"
    Image.fromarray(pixels).save(path)
    loaded = load_image(path)
    assert loaded.dtype == np.uint8
    assert loaded.flags.c_contiguous
    np.testing.assert_array_equal(loaded, pixels)


def test_str_path_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "rgb.png"
    Image.fromarray(_rgb_pattern()).save(path)
    np.testing.assert_array_equal(load_image(str(path)), _rgb_pattern())


def test_grayscale_is_replicated_to_three_channels(tmp_path: Path) -> None:
    gray = np.arange(12 * 16, dtype=np.uint8).reshape(12, 16)
    path = tmp_path / "gray.png"
    Image.fromarray(gray).save(path)
    loaded = load_image(path)
    assert loaded.shape == (12, 16, 3)
    for channel in range(3):
        np.testing.assert_array_equal(loaded[..., channel], gray)


def test_one_bit_image_becomes_black_and_white(tmp_path: Path) -> None:
    bits = np.zeros((6, 8), bool)
    bits[1:3, 2:5] = True
    path = tmp_path / "bits.png"
    Image.fromarray(bits).convert("1").save(path)
    loaded = load_image(path)
    np.testing.assert_array_equal(loaded[..., 0], bits.astype(np.uint8) * 255)
    assert np.unique(loaded).tolist() == [0, 255]


def test_rgba_is_composited_over_white(tmp_path: Path) -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[0, 0] = (10, 20, 30, 0)  # fully transparent: white
    rgba[0, 1] = (10, 20, 30, 255)  # opaque: unchanged
    rgba[0, 2] = (0, 0, 0, 128)  # half black over white
    rgba[0, 3] = (200, 100, 0, 51)  # 20 % opaque
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba).save(path)
    loaded = load_image(path)
    assert loaded.shape == (4, 4, 3)
    assert tuple(loaded[0, 0]) == WHITE_BACKGROUND == (255, 255, 255)
    assert tuple(loaded[0, 1]) == (10, 20, 30)
    assert tuple(loaded[0, 2]) == (127, 127, 127)
    assert tuple(loaded[0, 3]) == (244, 224, 204)
    assert (loaded[1:] == 255).all()  # rows 1..3 are (0, 0, 0, 0)


def test_gray_with_alpha_is_composited_over_white(tmp_path: Path) -> None:
    la = Image.fromarray(np.array([[[50, 255], [50, 0]]], np.uint8), mode="LA")
    path = tmp_path / "la.png"
    la.save(path)
    loaded = load_image(path)
    assert tuple(loaded[0, 0]) == (50, 50, 50)
    assert tuple(loaded[0, 1]) == (255, 255, 255)


def _palette_image() -> Image.Image:
    indices = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    image = Image.fromarray(indices, mode="L").convert("P")
    palette = [255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (253 * 3)
    image.putpalette(palette)
    return image


def test_palette_png_without_transparency(tmp_path: Path) -> None:
    path = tmp_path / "palette.png"
    _palette_image().save(path)
    assert Image.open(path).mode == "P"
    loaded = load_image(path)
    assert tuple(loaded[0, 0]) == (255, 0, 0)
    assert tuple(loaded[0, 1]) == (0, 255, 0)
    assert tuple(loaded[0, 2]) == (0, 0, 255)
    assert tuple(loaded[1, 0]) == (0, 0, 255)


def test_palette_png_with_transparent_index_turns_white(tmp_path: Path) -> None:
    path = tmp_path / "palette_trns.png"
    _palette_image().save(path, transparency=1)
    loaded = load_image(path)
    assert tuple(loaded[0, 0]) == (255, 0, 0)
    assert tuple(loaded[0, 1]) == (255, 255, 255)  # index 1 (green) is transparent
    assert tuple(loaded[1, 1]) == (255, 255, 255)
    assert tuple(loaded[0, 2]) == (0, 0, 255)


def test_sixteen_bit_gray_png_is_scaled_by_257(tmp_path: Path) -> None:
    values = np.array([[0, 128, 129, 257 * 100], [65535, 257 * 7, 300, 65534]], np.uint16)
    path = tmp_path / "gray16.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")
    loaded = load_image(path)
    expected = np.array([[0, 0, 1, 100], [255, 7, 1, 255]], np.uint8)
    np.testing.assert_array_equal(loaded[..., 0], expected)
    np.testing.assert_array_equal(loaded[..., 2], expected)


def test_sixteen_bit_rgb_png_keeps_its_colours(tmp_path: Path) -> None:
    rgb16 = np.zeros((2, 2, 3), np.uint16)
    rgb16[0, 0] = (65535, 0, 257 * 100)
    rgb16[1, 1] = (257 * 7, 257 * 200, 65535)
    path = tmp_path / "rgb16.png"
    assert cv2.imwrite(str(path), rgb16[..., ::-1])  # OpenCV writes BGR
    loaded = load_image(path)
    assert tuple(loaded[0, 0]) == (255, 0, 100)
    assert tuple(loaded[1, 1]) == (7, 200, 255)


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path: Path) -> None:
    cmyk = Image.new("CMYK", (8, 8), (0, 0, 0, 0))  # no ink: white
    path = tmp_path / "cmyk.jpg"
    cmyk.save(path, quality=100)
    loaded = load_image(path)
    assert loaded.shape == (8, 8, 3)
    assert (loaded >= 250).all()


def test_float_tiff_in_unit_range_is_scaled(tmp_path: Path) -> None:
    values = np.array([[0.0, 0.5, 1.0]], np.float32)
    path = tmp_path / "float.tiff"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode == "F"
    assert load_image(path)[0, :, 0].tolist() == [0, 128, 255]


# --- EXIF orientation ------------------------------------------------------------------------


def test_exif_orientation_6_rotates_clockwise(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    _oriented_jpeg(path, 6)
    loaded = load_image(path)
    assert loaded.shape == (60, 40, 3)  # stored 40 x 60, displayed transposed
    # The stored top-left corner is displayed at the top-right.
    top_right = loaded[2:12, 30:38].astype(int)
    assert (top_right[..., 0] > 200).all() and (top_right[..., 1:] < 60).all()
    top_left = loaded[2:12, 2:10].astype(int)
    assert (np.abs(top_left - 128) < 20).all()


def test_read_image_size_agrees_with_exif_orientation(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    _oriented_jpeg(path, 6)
    assert read_image_size(path) == (60, 40)
    assert read_image_size(path.read_bytes()) == (60, 40)
    assert read_image_size(Image.open(path)) == (60, 40)
    assert read_image_size(path) == load_image(path).shape[:2]


def test_orientation_3_keeps_shape_and_rotates_180(tmp_path: Path) -> None:
    path = tmp_path / "upside_down.jpg"
    _oriented_jpeg(path, 3)
    loaded = load_image(path)
    assert loaded.shape == (40, 60, 3)
    assert read_image_size(path) == (40, 60)
    assert loaded[-5, -5, 0] > 200 and loaded[-5, -5, 1] < 60


def test_pil_input_has_exif_orientation_applied(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    _oriented_jpeg(path, 6)
    with Image.open(path) as image:
        loaded = load_image(image)
    np.testing.assert_array_equal(loaded, load_image(path))


def test_png_exif_after_pixel_data_is_found_without_decoding(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[ORIENTATION] = 8
    data = _encode(Image.fromarray(_rgb_pattern(12, 16)), "PNG", exif=exif.tobytes())
    chunks = _png_chunks(data)
    exif_chunk = next(chunk for chunk in chunks if chunk[0] == b"eXIf")
    chunks.remove(exif_chunk)
    chunks.insert(-1, exif_chunk)  # just before IEND, after IDAT
    moved = _png_from_chunks(chunks)
    assert load_image(moved).shape == (16, 12, 3)
    assert read_image_size(moved) == (16, 12)


# --- bytes, PIL and array inputs -------------------------------------------------------------


def test_bytes_input(tmp_path: Path) -> None:
    data = _encode(Image.fromarray(_rgb_pattern()), "PNG")
    np.testing.assert_array_equal(load_image(data), _rgb_pattern())
    assert read_image_size(data) == (12, 16)


def test_pil_input_of_several_modes() -> None:
    np.testing.assert_array_equal(load_image(Image.fromarray(_rgb_pattern())), _rgb_pattern())
    assert tuple(load_image(Image.new("L", (3, 2), 77))[1, 2]) == (77, 77, 77)
    assert tuple(load_image(Image.new("RGBA", (3, 2), (1, 2, 3, 0)))[0, 0]) == (255, 255, 255)
    assert tuple(load_image(Image.new("CMYK", (3, 2), (0, 0, 0, 255)))[0, 0]) == (0, 0, 0)


@pytest.mark.parametrize(
    ("mode", "colour", "expected"),
    [
        ("YCbCr", (255, 128, 128), 255),
        ("LAB", (255, 128, 128), 255),  # L = 100, a = b = 0: white
        ("LAB", (128, 128, 128), 119),  # L = 50: middle gray in sRGB
        ("HSV", (0, 0, 200), 200),
    ],
)
def test_pil_colour_spaces_are_converted(
    mode: str, colour: tuple[int, int, int], expected: int
) -> None:
    loaded = load_image(Image.new(mode, (3, 2), colour)).astype(int)
    assert loaded.shape == (2, 3, 3)
    assert (np.abs(loaded - expected) <= 2).all()


def test_pil_32_bit_integer_image() -> None:
    values = np.array([[0, 257 * 50, 65535]], np.int32)
    image = Image.fromarray(values)
    assert image.mode == "I"
    assert load_image(image)[0, :, 1].tolist() == [0, 50, 255]


def test_pil_32_bit_integer_image_out_of_16_bit_range_fails() -> None:
    image = Image.fromarray(np.array([[0, 70000]], np.int32))
    with pytest.raises(ImageError, match=r"0\.\.70000"):
        load_image(image)


def test_pil_float_image_uses_0_255_when_max_above_1() -> None:
    image = Image.fromarray(np.array([[-3.0, 2.0, 127.6, 300.0]], np.float32))
    assert load_image(image)[0, :, 0].tolist() == [0, 2, 128, 255]


def test_uint8_arrays_of_each_layout() -> None:
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5)
    expected = np.repeat(gray[..., None], 3, axis=2)
    np.testing.assert_array_equal(load_image(gray), expected)
    np.testing.assert_array_equal(load_image(gray[..., None]), expected)
    rgb = _rgb_pattern(4, 5)
    np.testing.assert_array_equal(load_image(rgb), rgb)
    rgba = np.dstack((rgb, np.full((4, 5), 255, np.uint8)))
    np.testing.assert_array_equal(load_image(rgba), rgb)
    rgba[..., 3] = 0
    assert (load_image(rgba) == 255).all()


def test_array_result_is_a_contiguous_copy() -> None:
    rgb = _rgb_pattern(6, 8)
    loaded = load_image(rgb)
    assert not np.shares_memory(loaded, rgb)
    loaded[0, 0] = 0  # writable
    strided = np.asfortranarray(rgb)[:, ::2]
    result = load_image(strided)
    assert result.flags.c_contiguous
    np.testing.assert_array_equal(result, rgb[:, ::2])


def test_uint16_array_is_divided_by_257() -> None:
    values = np.array([[0, 257 * 100, 65535, 128, 129]], np.uint16)
    assert load_image(values)[0, :, 0].tolist() == [0, 100, 255, 0, 1]
    big_endian = values.astype(">u2")
    assert load_image(big_endian)[0, :, 0].tolist() == [0, 100, 255, 0, 1]


def test_bool_array_becomes_0_and_255() -> None:
    mask = np.array([[True, False], [False, True]])
    assert load_image(mask)[..., 0].tolist() == [[255, 0], [0, 255]]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_float_array_in_unit_range(dtype: type) -> None:
    values = np.array([[0.0, 0.25, 1.0]], dtype)
    assert load_image(values)[0, :, 0].tolist() == [0, 64, 255]


def test_float_array_above_1_is_0_255_and_clipped() -> None:
    values = np.array([[-10.0, 1.5, 99.4, 400.0]], np.float64)
    assert load_image(values)[0, :, 0].tolist() == [0, 2, 99, 255]


def test_float_rgba_array_is_composited() -> None:
    rgba = np.zeros((1, 2, 4), np.float32)
    rgba[0, 0] = (1.0, 0.0, 0.0, 1.0)
    rgba[0, 1] = (1.0, 0.0, 0.0, 0.0)
    assert load_image(rgba)[0].tolist() == [[255, 0, 0], [255, 255, 255]]


# --- errors ----------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.png"
    with pytest.raises(ImageError) as info:
        load_image(path)
    assert str(info.value) == f"image file not found: {path}"
    with pytest.raises(ImageError, match="not found"):
        read_image_size(path)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="directory") as info:
        load_image(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_text_file_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("these are not pixels\n")
    with pytest.raises(ImageError, match="not an image") as info:
        load_image(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, TijerasError)
    with pytest.raises(ImageError, match="not an image"):
        read_image_size(path)


@pytest.mark.parametrize(("file_format", "suffix"), [("PNG", ".png"), ("JPEG", ".jpg")])
def test_truncated_file(tmp_path: Path, file_format: str, suffix: str) -> None:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = _encode(Image.fromarray(noise), file_format)
    path = tmp_path / f"truncated{suffix}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated") as info:
        load_image(path)
    assert str(path) in str(info.value)
    with pytest.raises(ImageError, match="truncated"):
        load_image(path.read_bytes())
    # The header is intact: the size is readable without decoding the pixels.
    assert read_image_size(path) == (64, 64)


def test_garbage_bytes() -> None:
    with pytest.raises(ImageError, match=r"not an image .*<5 bytes of image data>"):
        load_image(b"hello")


def test_too_many_pixels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.png"
    Image.fromarray(_rgb_pattern(40, 50)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ImageError, match="too many pixels") as info:
        load_image(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("array", "shape_text"),
    [
        (np.zeros((4, 5, 2), np.uint8), "(4, 5, 2)"),
        (np.zeros((2, 4, 5, 3), np.uint8), "(2, 4, 5, 3)"),
        (np.zeros((0, 5, 3), np.uint8), "(0, 5, 3)"),
        (np.zeros((5,), np.uint8), "(5,)"),
        (np.zeros((4, 5, 3), np.int64), "(4, 5, 3)"),
        (np.zeros((4, 5), np.complex64), "(4, 5)"),
        (np.zeros((4, 5, 3), np.uint32), "(4, 5, 3)"),
    ],
)
def test_bad_arrays_name_shape_and_dtype(array: np.ndarray, shape_text: str) -> None:
    with pytest.raises(ImageError) as info:
        load_image(array)
    message = str(info.value)
    assert shape_text in message and str(array.dtype) in message
    with pytest.raises(ImageError):
        read_image_size(array)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_float_array(bad: float) -> None:
    values = np.zeros((3, 3), np.float32)
    values[1, 1] = bad
    with pytest.raises(ImageError, match=r"\(3, 3\).*float32.*NaN or infinite"):
        load_image(values)


def test_unsupported_source_type() -> None:
    with pytest.raises(ImageError, match="list"):
        load_image([[0, 1], [2, 3]])  # type: ignore[arg-type]


def test_read_image_size_of_array_and_pil() -> None:
    assert read_image_size(np.zeros((7, 9, 3), np.uint8)) == (7, 9)
    assert read_image_size(np.zeros((7, 9), np.float32)) == (7, 9)
    assert read_image_size(Image.new("RGB", (9, 7))) == (7, 9)
