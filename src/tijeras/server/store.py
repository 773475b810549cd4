"""The server's memory: uploaded images, their embeddings, predicted masks and kept objects.

Nothing here touches the disk. Images are evicted least-recently-used first when more than
``max_images`` are held, after ``ttl`` seconds without a request, and on delete. An image
holding kept objects is never evicted to make room (its objects would be lost): when every
image held has some, a new one is refused with :class:`StoreFullError` until the user closes
one. Ids are random 128-bit tokens, so an id cannot be guessed from another.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine.predictor import Predictor
from ..errors import TijerasError

LOW_RES_KEPT = 48  # masks per image that keep their low-res logits for refinement


class StoreFullError(TijerasError):
    """Every image held has kept objects, and no more images may be held."""


@dataclass
class MaskEntry:
    """A mask the server produced for an image, addressable by its id.

    Attributes:
        rle: compressed COCO RLE at the image's full size.
        score: the model's predicted IoU (or the backend's score).
        low_res: 1 x h x w logits to feed back as the next prompt's mask, when available.
        area: pixels in the mask.
        bbox: XYWH box of the mask.
        source: ``"prompt"``, ``"everything"``, ``"edited"`` (a brushed mask) or ``"kept"``
            (restored with a folder image's objects).
        pinned: once kept as an object, a mask is never evicted (an undone delete may keep it
            again).
    """

    rle: dict[str, Any]
    score: float
    low_res: np.ndarray | None
    area: int
    bbox: list[float]
    source: str = "prompt"
    pinned: bool = False


@dataclass
class KeptObject:
    """An object the user kept: a name and one of the image's masks."""

    id: str
    name: str
    mask_id: str


@dataclass
class ImageEntry:
    """One uploaded image and everything derived from it.

    ``status`` goes ``queued`` -> ``encoding`` -> ``ready`` (or ``failed`` with ``error``).
    ``lock`` guards ``masks`` and ``objects``; ``predictor`` (holding the image's embedding and
    the decoder's per-image part, shared by every prompt) is set once by the encoder.
    ``folder_file`` names the file of ``tijeras serve --folder`` it was opened from, whose
    objects outlive the entry. ``geo`` is set for a GeoTIFF: ``pixels`` is then its preview.
    """

    id: str
    pixels: np.ndarray
    name: str
    folder_file: str | None = None
    status: str = "queued"
    progress: float = 0.0
    error: str | None = None
    predictor: Predictor | None = None
    masks: OrderedDict[str, MaskEntry] = field(default_factory=OrderedDict)
    objects: list[KeptObject] = field(default_factory=list)
    everything: dict[str, Any] = field(default_factory=lambda: {"status": "none"})
    encode_seconds: float = 0.0
    geo: Any = None  # a GeoTIFF's georeference and bands (server/geo.py GeoImage), else None
    mask_limit: int = 256
    touched: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    encoded: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    def add_mask(self, entry: MaskEntry, limit: int) -> str:
        """Store a mask under a new id; the oldest masks not kept as objects are evicted."""
        mask_id = secrets.token_urlsafe(9)
        with self.lock:
            self.masks[mask_id] = entry
            extra = len(self.masks) - limit
            for old in list(self.masks):
                if extra <= 0:
                    break
                if not self.masks[old].pinned and old != mask_id:
                    del self.masks[old]
                    extra -= 1
            # low-res logits (256 KB each) are kept for the newest masks only: refining an
            # old candidate is rare, and they dominate the memory of an image.
            with_logits = [m for m in self.masks.values() if m.low_res is not None]
            for old_mask in with_logits[:-LOW_RES_KEPT]:
                old_mask.low_res = None
        return mask_id

    def mask(self, mask_id: str) -> MaskEntry | None:
        with self.lock:
            return self.masks.get(mask_id)

    @property
    def holds_work(self) -> bool:
        """Whether evicting this entry would lose objects the user kept (a folder image's
        objects are kept by the folder, so it may go)."""
        return bool(self.objects) and self.folder_file is None


class ImageStore:
    """Images by id, bounded by count and idle time.

    Args:
        max_images: how many images are held at once (the least recently used goes first).
        ttl: seconds an image is kept without any request for it.
        max_masks: masks remembered per image (kept objects are never evicted).
    """

    def __init__(self, max_images: int = 8, ttl: float = 3600.0, max_masks: int = 256) -> None:
        self.max_images = max_images
        self.ttl = ttl
        self.max_masks = max_masks
        self._images: OrderedDict[str, ImageEntry] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, pixels: np.ndarray, name: str = "", folder_file: str | None = None) -> ImageEntry:
        """Hold a new image, evicting the least recently used one without kept objects if
        the store is full.

        Raises:
            StoreFullError: every image held has kept objects.
        """
        entry = ImageEntry(
            id=secrets.token_urlsafe(16),
            pixels=pixels,
            name=name,
            folder_file=folder_file,
            mask_limit=self.max_masks,
        )
        with self._lock:
            self._expire()
            self._make_room(self.max_images - 1)
            self._images[entry.id] = entry
        return entry

    def check_room(self) -> None:
        """Raise :class:`StoreFullError` now if a new image could not be held."""
        with self._lock:
            self._expire()
            if len(self._images) >= self.max_images and all(
                e.holds_work for e in self._images.values()
            ):
                raise self._full()

    def _make_room(self, keep: int) -> None:
        while len(self._images) > keep:
            victim = next((k for k, e in self._images.items() if not e.holds_work), None)
            if victim is None:
                raise self._full()
            del self._images[victim]

    def _full(self) -> StoreFullError:
        return StoreFullError(
            f"{len(self._images)} images with kept objects are open, the most this server "
            f"holds (--max-images {self.max_images}): download their objects and close one "
            "of them first"
        )

    def get(self, image_id: str) -> ImageEntry | None:
        with self._lock:
            self._expire()
            entry = self._images.get(image_id)
            if entry is not None:
                entry.touched = time.monotonic()
                self._images.move_to_end(image_id)
            return entry

    def find_folder_file(self, name: str) -> ImageEntry | None:
        """The open entry of a ``--folder`` file, if one is held."""
        with self._lock:
            self._expire()
            return next((e for e in self._images.values() if e.folder_file == name), None)

    def remove(self, image_id: str) -> bool:
        with self._lock:
            return self._images.pop(image_id, None) is not None

    def __contains__(self, image_id: str) -> bool:
        with self._lock:
            return image_id in self._images

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._images)

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, e in self._images.items() if now - e.touched > self.ttl]:
            del self._images[key]
