"""A video's pictures and files: frames as JPEG, the overlay MP4, the SA-V masks JSON and the
zip of palette PNGs, all made in memory (the MP4 through the RAM file system, see
:func:`scratch_folder`)."""

from __future__ import annotations

import io
import os
import secrets
import zipfile
from typing import Any

import numpy as np

from ...video.errors import VideoError
from .entry import VideoEntry, check_frame, frame_source, scratch_folder


def frame_jpeg(entry: VideoEntry, frame: int, quality: int = 90) -> bytes:
    """Frame ``frame`` as JPEG bytes (decoded from the video in memory)."""
    import cv2

    check_frame(entry, frame)
    with entry.display_lock:
        rgb = entry.display.read(frame)
    ok, data = cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise VideoError(f"frame {frame} could not be encoded as JPEG")
    return data.tobytes()


def _masks_array(
    entry: VideoEntry, held: dict[int, dict[str, Any]], objects: list[int]
) -> np.ndarray:
    """B x H x W bool masks of ``objects`` from one frame's RLEs (empty where none)."""
    from pycocotools import mask as mask_utils

    out = np.zeros((len(objects), entry.height, entry.width), bool)
    for i, obj_id in enumerate(objects):
        rle = held.get(obj_id)
        if rle is not None:
            out[i] = mask_utils.decode({**rle, "counts": rle["counts"].encode()}).astype(bool)
    return out


def _snapshot(entry: VideoEntry) -> tuple[list[int], dict[int, dict[int, dict[str, Any]]]]:
    """The objects and masks as they are now (a running propagation keeps adding frames)."""
    return list(entry.objects), dict(list(entry.masks.items()))


# ------------------------------------------------------------------------------- downloads
def overlay_mp4(entry: VideoEntry) -> bytes:
    """The video with every object drawn over it (``mp4v``, the source's frame rate)."""
    from ...video.export import OverlayWriter

    objects, masks = _snapshot(entry)
    path = os.path.join(scratch_folder(), f"tijeras-{secrets.token_hex(8)}.mp4")
    frames = frame_source(entry.data, entry.name, entry.height * entry.width)
    try:
        writer = OverlayWriter(path, (entry.height, entry.width), entry.fps or 24.0)
        try:
            for index in range(entry.num_frames):
                drawn = _masks_array(entry, masks.get(index, {}), objects)
                writer.write(frames.read(index), drawn, objects)
        finally:
            writer.close()
        with open(path, "rb") as f:
            return f.read()
    finally:
        frames.close()
        for leftover in (path, path[: -len(".mp4")] + ".part.mp4"):
            try:
                os.unlink(leftover)
            except FileNotFoundError:
                pass


def masklets_json(entry: VideoEntry) -> bytes:
    """SA-V style masklets of the frames that have masks (COCO RLEs per frame and object)."""
    from ...video.export import MaskletWriter

    objects, masks = _snapshot(entry)
    text = io.StringIO()
    writer = MaskletWriter(
        text, entry.stem, (entry.height, entry.width), objects, num_frames=entry.num_frames
    )
    for frame in sorted(masks):
        writer.write(frame, _masks_array(entry, masks[frame], objects))
    writer.close()
    return text.getvalue().encode()


def palette_zip(entry: VideoEntry) -> bytes:
    """A zip of one palette PNG per frame (``<video>/00000.png``...), pixel = object id."""
    from PIL import Image

    from ...video.export import davis_palette, label_image

    objects, masks = _snapshot(entry)
    palette = davis_palette()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for frame in range(entry.num_frames):
            labels = label_image(_masks_array(entry, masks.get(frame, {}), objects), objects)
            image = Image.fromarray(labels, mode="P")
            image.putpalette(palette)
            png = io.BytesIO()
            image.save(png, format="PNG")
            archive.writestr(f"{entry.stem}/{frame:05d}.png", png.getvalue())
    return out.getvalue()
