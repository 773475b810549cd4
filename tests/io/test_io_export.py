"""Tests of tijeras.io.export: boxes, mask PNGs, cut-outs, overlays, inpainting masks, saving."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tijeras.errors import ImageError
from tijeras.io import (
    PALETTE,
    cutout,
    inpaint_mask,
    mask_to_box,
    overlay,
    save_image,
    save_mask_png,
)


def _noise(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _rect_mask(shape: tuple[int, int], rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[rows, cols] = True
    return mask


def _disc(radius: int) -> np.ndarray:
    offsets = np.arange(-radius, radius + 1)
    return offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius**2


def _grow(mask: np.ndarray, radius: int) -> np.ndarray:
    """Every pixel within Chebyshev distance ``radius`` of the mask (a square dilation)."""
    grown = np.zeros_like(mask)
    for y, x in zip(*np.nonzero(mask), strict=True):
        grown[max(y - radius, 0) : y + radius + 1, max(x - radius, 0) : x + radius + 1] = True
    return grown


# --- mask_to_box -----------------------------------------------------------------------------


def test_mask_to_box_of_a_rectangle_is_inclusive_exclusive() -> None:
    mask = _rect_mask((10, 12), slice(2, 5), slice(3, 7))
    assert mask_to_box(mask) == (3, 2, 7, 5)


def test_mask_to_box_of_single_pixels_at_the_corners() -> None:
    mask = np.zeros((6, 9), bool)
    mask[0, 0] = True
    assert mask_to_box(mask) == (0, 0, 1, 1)
    mask[:] = False
    mask[5, 8] = True
    assert mask_to_box(mask) == (8, 5, 9, 6)


def test_mask_to_box_of_scattered_pixels_and_numeric_masks() -> None:
    mask = np.zeros((20, 20), np.uint8)
    mask[3, 15] = 255
    mask[12, 4] = 255
    assert mask_to_box(mask) == (4, 3, 16, 13)
    assert mask_to_box(mask // 255) == (4, 3, 16, 13)
    assert mask_to_box(mask.astype(np.float32) / 255) == (4, 3, 16, 13)


def test_mask_to_box_returns_plain_ints() -> None:
    box = mask_to_box(_rect_mask((5, 5), slice(1, 2), slice(1, 3)))
    assert box is not None
    assert all(type(value) is int for value in box)


def test_mask_to_box_of_empty_mask_is_none() -> None:
    assert mask_to_box(np.zeros((4, 4), bool)) is None
    assert mask_to_box(np.zeros((4, 4), np.uint8)) is None


def test_mask_to_box_rejects_non_2d() -> None:
    with pytest.raises(ImageError, match=r"\(2, 4, 4\)"):
        mask_to_box(np.zeros((2, 4, 4), bool))


# --- save_mask_png ---------------------------------------------------------------------------


@pytest.mark.parametrize("scale", ["bool", "unit", "byte"])
def test_save_mask_png_round_trip(tmp_path: Path, scale: str) -> None:
    mask = np.zeros((15, 20), bool)
    mask[3:9, 4:16] = True
    mask[11, 2] = True
    data = {"bool": mask, "unit": mask.astype(np.uint8), "byte": mask.astype(np.uint8) * 255}
    path = tmp_path / "nested" / "dir" / "mask.png"
    save_mask_png(data[scale], path)
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.mode == "L"
        pixels = np.asarray(image)
    assert set(np.unique(pixels).tolist()) == {0, 255}
    np.testing.assert_array_equal(pixels, mask.astype(np.uint8) * 255)


def test_save_mask_png_rejects_wrong_shape(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"\(4, 4, 3\)"):
        save_mask_png(np.zeros((4, 4, 3), bool), tmp_path / "mask.png")
    assert not (tmp_path / "mask.png").exists()


# --- cutout ----------------------------------------------------------------------------------


def test_cutout_crops_to_the_box_with_full_alpha_inside() -> None:
    image = _noise(30, 40)
    mask = _rect_mask((30, 40), slice(5, 10), slice(12, 20))
    result = cutout(image, mask)
    assert result.shape == (5, 8, 4)
    assert result.dtype == np.uint8
    assert (result[..., 3] == 255).all()
    np.testing.assert_array_equal(result[..., :3], image[5:10, 12:20])


def test_cutout_alpha_is_zero_outside_a_non_rectangular_mask() -> None:
    image = _noise(30, 40)
    mask = np.zeros((30, 40), bool)
    mask[5:10, 12:20] = True
    mask[7, 25] = True  # isolated pixel widens the box
    result = cutout(image, mask)
    assert result.shape == (5, 14, 4)
    np.testing.assert_array_equal(result[..., 3], mask[5:10, 12:26].astype(np.uint8) * 255)
    np.testing.assert_array_equal(result[..., :3], image[5:10, 12:26])


def test_cutout_pad_adds_transparent_margin() -> None:
    image = _noise(30, 40)
    mask = _rect_mask((30, 40), slice(5, 10), slice(12, 20))
    result = cutout(image, mask, pad=3)
    assert result.shape == (11, 14, 4)
    np.testing.assert_array_equal(result[..., :3], image[2:13, 9:23])
    assert (result[3:8, 3:11, 3] == 255).all()
    assert result[..., 3].sum() == 5 * 8 * 255  # nothing else is opaque


def test_cutout_pad_is_clamped_to_the_image() -> None:
    image = _noise(30, 40)
    mask = _rect_mask((30, 40), slice(0, 4), slice(36, 40))
    result = cutout(image, mask, pad=5)
    assert result.shape == (9, 9, 4)  # rows 0..9, columns 31..40
    np.testing.assert_array_equal(result[..., :3], image[0:9, 31:40])


def test_cutout_without_crop_keeps_the_image_size() -> None:
    image = _noise(30, 40)
    mask = _rect_mask((30, 40), slice(5, 10), slice(12, 20))
    result = cutout(image, mask, crop=False)
    assert result.shape == (30, 40, 4)
    np.testing.assert_array_equal(result[..., :3], image)
    np.testing.assert_array_equal(result[..., 3], mask.astype(np.uint8) * 255)


def test_cutout_of_an_empty_mask_fails() -> None:
    with pytest.raises(ImageError) as info:
        cutout(_noise(8, 8), np.zeros((8, 8), bool))
    assert str(info.value) == "the mask is empty: nothing to cut out"


def test_cutout_size_mismatch_names_both_shapes() -> None:
    with pytest.raises(ImageError, match=r"\(8, 9, 3\).*\(8, 8\)"):
        cutout(_noise(8, 9), np.ones((8, 8), bool))


def test_cutout_negative_pad_fails() -> None:
    with pytest.raises(ImageError, match="pad"):
        cutout(_noise(8, 8), np.ones((8, 8), bool), pad=-1)


# --- overlay ---------------------------------------------------------------------------------


def test_overlay_changes_pixels_only_in_and_near_the_mask() -> None:
    image = np.full((40, 50, 3), 100, np.uint8)
    mask = _rect_mask((40, 50), slice(10, 20), slice(15, 30))
    result = overlay(image, mask)
    assert result.shape == image.shape and result.dtype == np.uint8
    changed = (result != image).any(axis=2)
    assert not (changed & ~_grow(mask, 2)).any()
    assert changed[mask].all()
    assert (image == 100).all()  # the input is left alone


def test_overlay_fill_blends_the_first_palette_colour() -> None:
    image = np.full((40, 50, 3), 100, np.uint8)
    mask = _rect_mask((40, 50), slice(10, 20), slice(15, 30))
    result = overlay(image, mask, alpha=0.5)
    expected_fill = np.rint(0.5 * 100 + 0.5 * np.asarray(PALETTE[0], float))
    np.testing.assert_array_equal(result[14, 22], expected_fill)  # deep inside
    np.testing.assert_array_equal(result[10, 22], PALETTE[0])  # on the border: outline


def test_overlay_without_outline_only_touches_the_mask() -> None:
    image = _noise(30, 30)
    mask = _rect_mask((30, 30), slice(5, 12), slice(8, 20))
    result = overlay(image, mask, alpha=0.3, outline=False)
    changed = (result != image).any(axis=2)
    assert not (changed & ~mask).any()
    expected = np.rint(0.7 * image[mask] + 0.3 * np.asarray(PALETTE[0], float))
    np.testing.assert_array_equal(result[mask], expected.astype(np.uint8))


def test_overlay_outline_follows_holes() -> None:
    image = np.zeros((40, 40, 3), np.uint8)
    ring = _rect_mask((40, 40), slice(5, 35), slice(5, 35))
    ring[15:25, 15:25] = False
    result = overlay(image, ring, alpha=0.0, colors=[(0, 0, 255)])
    assert tuple(result[5, 20]) == (0, 0, 255)  # outer border
    assert tuple(result[14, 20]) == (0, 0, 255)  # border of the hole
    assert tuple(result[20, 20]) == (0, 0, 0)  # middle of the hole


def test_overlay_masks_get_distinct_colours_and_stack_equals_list() -> None:
    image = np.full((30, 60, 3), 255, np.uint8)
    first = _rect_mask((30, 60), slice(5, 25), slice(5, 25))
    second = _rect_mask((30, 60), slice(5, 25), slice(35, 55))
    from_list = overlay(image, [first, second], alpha=1.0)
    from_stack = overlay(image, np.stack([first, second]), alpha=1.0)
    np.testing.assert_array_equal(from_list, from_stack)
    assert tuple(from_list[15, 15]) == PALETTE[0]
    assert tuple(from_list[15, 45]) == PALETTE[1]
    assert PALETTE[0] != PALETTE[1]
    assert tuple(from_list[15, 30]) == (255, 255, 255)  # between the masks


def test_overlay_cycles_given_colours() -> None:
    image = np.zeros((10, 20, 3), np.uint8)
    first = _rect_mask((10, 20), slice(2, 8), slice(2, 8))
    second = _rect_mask((10, 20), slice(2, 8), slice(12, 18))
    result = overlay(image, [first, second], alpha=1.0, colors=[(9, 8, 7)], outline=False)
    assert tuple(result[5, 5]) == (9, 8, 7)
    assert tuple(result[5, 15]) == (9, 8, 7)


def test_overlay_with_no_masks_returns_the_image() -> None:
    image = _noise(6, 7)
    np.testing.assert_array_equal(overlay(image, []), image)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"alpha": 1.5}, "alpha"),
        ({"colors": [(300, 0, 0)]}, "colors"),
        ({"colors": [(1, 2)]}, "colors"),
    ],
)
def test_overlay_rejects_bad_options(kwargs: dict[str, object], pattern: str) -> None:
    mask = np.ones((4, 4), bool)
    with pytest.raises(ImageError, match=pattern):
        overlay(np.zeros((4, 4, 3), np.uint8), mask, **kwargs)  # type: ignore[arg-type]


def test_overlay_size_mismatch_names_both_shapes() -> None:
    with pytest.raises(ImageError, match=r"\(5, 5, 3\).*\(4, 4\)"):
        overlay(np.zeros((5, 5, 3), np.uint8), np.ones((4, 4), bool))


def test_overlay_rejects_4d_masks() -> None:
    with pytest.raises(ImageError, match=r"\(1, 2, 4, 4\)"):
        overlay(np.zeros((4, 4, 3), np.uint8), np.ones((1, 2, 4, 4), bool))


# --- inpaint_mask ----------------------------------------------------------------------------


def test_inpaint_mask_without_dilation_is_0_255() -> None:
    mask = _rect_mask((8, 8), slice(2, 4), slice(3, 6))
    result = inpaint_mask(mask)
    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, mask.astype(np.uint8) * 255)


@pytest.mark.parametrize(("radius", "area"), [(1, 5), (2, 13), (3, 29), (5, 81)])
def test_inpaint_mask_dilates_a_pixel_into_a_disc(radius: int, area: int) -> None:
    mask = np.zeros((21, 21), bool)
    mask[10, 10] = True
    result = inpaint_mask(mask, dilate=radius)
    assert set(np.unique(result).tolist()) == {0, 255}
    assert int((result == 255).sum()) == area
    expected = np.zeros((21, 21), bool)
    expected[10 - radius : 11 + radius, 10 - radius : 11 + radius] = _disc(radius)
    np.testing.assert_array_equal(result == 255, expected)


def test_inpaint_mask_dilation_stops_at_the_border() -> None:
    mask = np.zeros((10, 10), np.uint8)
    mask[0, 0] = 1
    result = inpaint_mask(mask, dilate=3)
    np.testing.assert_array_equal(result[:4, :4] == 255, _disc(3)[3:, 3:])
    assert (result[4:] == 0).all() and (result[:, 4:] == 0).all()


@pytest.mark.parametrize("dilate", [-1, 1.5])
def test_inpaint_mask_rejects_bad_dilate(dilate: float) -> None:
    with pytest.raises(ImageError, match="dilate"):
        inpaint_mask(np.ones((4, 4), bool), dilate=dilate)  # type: ignore[arg-type]


# --- save_image ------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [0, 3, 4])
def test_save_image_png_round_trips_exactly(tmp_path: Path, channels: int) -> None:
    pixels = _noise(12, 10)
    if channels == 0:
        pixels = pixels[..., 0]
    elif channels == 4:
        pixels = np.dstack((pixels, np.arange(120, dtype=np.uint8).reshape(12, 10)))
    path = tmp_path / "out" / "image.png"
    save_image(pixels, path)
    with Image.open(path) as image:
        assert image.format == "PNG"
        np.testing.assert_array_equal(np.asarray(image), pixels)


@pytest.mark.parametrize(
    ("name", "file_format"),
    [
        ("a.jpg", "JPEG"),
        ("b.jpeg", "JPEG"),
        ("c.JPG", "JPEG"),
        ("d.webp", "WEBP"),
        ("e.PNG", "PNG"),
    ],
)
def test_save_image_format_follows_the_suffix(tmp_path: Path, name: str, file_format: str) -> None:
    pixels = np.full((16, 16, 3), (200, 40, 90), np.uint8)
    save_image(pixels, tmp_path / name)
    with Image.open(tmp_path / name) as image:
        assert image.format == file_format
        assert image.size == (16, 16)
        assert (np.abs(np.asarray(image.convert("RGB")).astype(int) - pixels) <= 4).all()


def test_save_image_rgba_as_jpeg_is_composited_over_white(tmp_path: Path) -> None:
    pixels = np.zeros((16, 16, 4), np.uint8)  # transparent black
    save_image(pixels, tmp_path / "flat.jpg")
    with Image.open(tmp_path / "flat.jpg") as image:
        assert image.mode == "RGB"
        assert (np.asarray(image) >= 250).all()


@pytest.mark.parametrize("name", ["image.bmp", "image", "image.tif"])
def test_save_image_unknown_suffix(tmp_path: Path, name: str) -> None:
    path = tmp_path / "new_dir" / name
    with pytest.raises(ImageError, match="unsupported image suffix") as info:
        save_image(np.zeros((4, 4, 3), np.uint8), path)
    assert repr(path.suffix) in str(info.value)
    assert not path.parent.exists()


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((4, 4, 3), np.float32),
        np.zeros((4, 4, 2), np.uint8),
        np.zeros((0, 4), np.uint8),
    ],
)
def test_save_image_rejects_bad_arrays(tmp_path: Path, array: np.ndarray) -> None:
    with pytest.raises(ImageError, match=str(array.dtype)) as info:
        save_image(array, tmp_path / "x.png")
    assert str(tuple(array.shape)) in str(info.value)
