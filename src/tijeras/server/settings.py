"""Server settings, with the defaults ``tijeras serve`` uses."""

from __future__ import annotations

from dataclasses import dataclass

from ..defaults import DEFAULT_MODEL

SAMPLE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


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

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
