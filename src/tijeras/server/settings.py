"""Server settings, with the defaults ``tijeras serve`` uses."""

from __future__ import annotations

from dataclasses import dataclass

from ..defaults import DEFAULT_MODEL

SAMPLE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
FOLDER_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


@dataclass
class ServerSettings:
    """How the server runs.

    Attributes:
        model: registered model name; its weights come from ``checkpoint``, the cache, or a
            download, else the classical backend starts instead.
        checkpoint: a weights file (errors in it are reported, never replaced by a fallback).
        device: ``"cpu"``, ``"cuda"``...
        dtype: ``"float32"`` or ``"bfloat16"``.
        download: try to download missing weights at start-up.
        download_timeout: seconds a connection attempt may take during that download.
        cache: the weights cache folder (default ``$TIJERAS_CACHE`` or ``~/.cache/tijeras``).
        max_upload_mb: largest accepted upload, in megabytes.
        max_pixels: largest accepted image, in pixels (checked from the header, before decoding).
        max_images: images held in memory at once (least recently used evicted first).
        ttl_seconds: an image untouched this long is forgotten.
        max_masks: masks remembered per image (kept objects are never evicted).
        samples: a folder of sample images the page offers (optional).
        folder: a folder of images to label one after another (``--folder``): the page lists
            them, objects kept on each are remembered while the server runs, and the COCO
            file of the whole folder is written (inside it) when the user asks.
        max_everything_prompts: the most prompts one everything run may decode (grid points
            of every crop layer): a larger run would hold the queue every user shares.
        max_objects: kept objects per image (their masks are never evicted, so this bounds
            the memory an image can hold).
        geo_preview_side: longest side of a GeoTIFF's preview; a larger raster is read
            reduced to it (from its overviews where it has them).
        video_model: the SAM 2 model that tracks videos (the server's own model when that is
            a SAM 2 model), loaded when the first video is opened.
        video_checkpoint: a weights file for ``video_model``.
        max_videos: videos held in memory at once (a new one is refused, never evicting one).
        max_video_mb: largest accepted video upload, in megabytes.
        max_video_frames: most frames a video may have (its tracker memories grow with them).
        max_video_seconds: longest accepted video, in seconds.
        max_video_pixels: largest accepted frame, in pixels.
        max_video_objects: objects tracked in one video (each keeps its memories of every
            frame, about 0.8 MB per frame with SAM 2 Hiera-T, so that corrections can be
            tracked from any frame).
    """

    model: str = DEFAULT_MODEL
    checkpoint: str | None = None
    device: str = "cpu"
    dtype: str = "float32"
    download: bool = True
    download_timeout: float = 10.0
    cache: str | None = None
    max_upload_mb: float = 50.0
    max_pixels: int = 60_000_000
    max_images: int = 8
    ttl_seconds: float = 3600.0
    max_masks: int = 256
    samples: str | None = None
    folder: str | None = None
    max_everything_prompts: int = 16_384
    max_objects: int = 1000
    geo_preview_side: int = 2048
    video_model: str = "sam2.1-hiera-tiny"
    video_checkpoint: str | None = None
    max_videos: int = 2
    max_video_mb: float = 200.0
    max_video_frames: int = 600
    max_video_seconds: float = 120.0
    max_video_pixels: int = 3840 * 2160
    max_video_objects: int = 10

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_video_bytes(self) -> int:
        return int(self.max_video_mb * 1024 * 1024)
