"""``SamPredictor``: Meta's predictor API on tijeras' predictor engine.

Meta's state is kept in Meta's attributes (``features``, ``original_size``, ``input_size``,
``is_image_set``, ``orig_h``...), which user code reads and also assigns, for example to use an
embedding stored earlier::

    predictor.features = torch.load("photo_embedding.pt")      # 1 x 256 x 64 x 64
    predictor.original_size, predictor.input_size = (1200, 1800), (683, 1024)
    predictor.is_image_set = True
    masks, scores, logits = predictor.predict(point_coords=..., point_labels=...)

Before decoding, the engine is given whatever embedding these attributes describe, so an
assignment takes effect as it does with Meta's predictor. The attributes have class defaults
and the engine is made on first use, so a subclass that sets ``model`` and ``transform`` itself
without calling ``__init__`` (as segment-geospatial's ``SamGeoPredictor`` does) works too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from tijeras.engine.predictor import Predictor
from tijeras.engine.prompts import validate_prompts
from tijeras.errors import TijerasError
from tijeras.types import ImageEmbedding

from .sam_transforms import ResizeLongestSide

if TYPE_CHECKING:
    from tijeras.models.sam.model import Sam

_NO_IMAGE = "An image must be set with .set_image(...) before mask prediction."


class SamPredictor:
    """Meta's ``SamPredictor``: ``set_image`` once, then ``predict`` any number of prompts.

    Embeddings are cached by image content, so setting an image seen recently is free.

    Args:
        sam_model: a SAM-family model (``sam_model_registry[...]()`` or ``tijeras.load_model``).
    """

    # Meta's state, as class defaults (see the module docstring).
    features: torch.Tensor | None = None
    original_size: tuple[int, int] | None = None
    input_size: tuple[int, int] | None = None
    is_image_set: bool = False
    orig_h: int | None = None
    orig_w: int | None = None
    input_h: int | None = None
    input_w: int | None = None

    def __init__(self, sam_model: Sam) -> None:
        self.model = sam_model
        self.__dict__["_native"] = Predictor(sam_model)  # refuses a model of another package
        self.transform = ResizeLongestSide(sam_model.input_spec.image_size)
        self.reset_image()

    # ------------------------------------------------------------------ the engine
    @property
    def _engine(self) -> Predictor:
        """The native predictor behind this one, made for the current ``model``."""
        engine = self.__dict__.get("_native")
        if engine is None or engine.model is not self.model:
            engine = Predictor(self.model)
            self.__dict__["_native"] = engine
            self.__dict__["_synced"] = None
        return engine

    def _current(self) -> Predictor:
        """The engine, holding the embedding that Meta's attributes describe."""
        if not self.is_image_set:
            raise RuntimeError(_NO_IMAGE)
        engine = self._engine
        features = self.features
        if not isinstance(features, torch.Tensor):
            raise TijerasError(
                f"SamPredictor.features must be the image embedding (a 1 x C x h x w tensor), "
                f"got {type(features).__name__}"
            )
        sizes = (_size(self.original_size, "original_size"), _size(self.input_size, "input_size"))
        synced = self.__dict__.get("_synced")
        if (
            engine.embedding is None
            or synced is None
            or synced[0] is not features
            or synced[1:] != sizes
        ):
            if features.ndim != 4 or features.shape[0] != 1:
                raise TijerasError(
                    "SamPredictor.features must be 1 x C x h x w, got shape "
                    f"{tuple(features.shape)}"
                )
            engine.set_embedding(
                ImageEmbedding(
                    features=features,
                    original_size=sizes[0],
                    input_size=sizes[1],
                    model_name=engine.model_name,
                )
            )
            self.__dict__["_synced"] = (features, *sizes)
        return engine

    def _use(self, embedding: ImageEmbedding) -> None:
        """Make ``embedding`` current and describe it in Meta's attributes."""
        self.reset_image()
        self.features = embedding.features
        self.original_size = embedding.original_size
        self.input_size = embedding.input_size
        self.orig_h, self.orig_w = embedding.original_size
        self.input_h, self.input_w = embedding.input_size
        self.is_image_set = True
        self.__dict__["_synced"] = (
            embedding.features,
            embedding.original_size,
            embedding.input_size,
        )

    @property
    def device(self) -> torch.device:
        return self.model.device

    # -------------------------------------------------------------------- images
    def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
        """Encode an H x W x 3 uint8 image in ``image_format`` (``"RGB"`` or ``"BGR"``)."""
        self._use(self._engine.set_image(_writable(image), image_format=image_format))

    def set_torch_image(
        self, transformed_image: torch.Tensor, original_image_size: tuple[int, ...]
    ) -> None:
        """Encode a 1 x 3 x h x w image already resized with :attr:`transform`."""
        if len(original_image_size) != 2:
            raise ValueError(f"original_image_size must be (H, W), got {original_image_size!r}")
        h, w = original_image_size
        self._use(self._engine.encode(transformed_image, (int(h), int(w))))

    def get_image_embedding(self) -> torch.Tensor:
        """The current image's 1 x C x 64 x 64 embedding."""
        if not self.is_image_set:
            raise RuntimeError(
                "An image must be set with .set_image(...) to generate an embedding."
            )
        if self.features is None:
            raise RuntimeError("Features must exist if an image has been set.")
        return self.features

    def reset_image(self) -> None:
        """Forget the current image."""
        self.is_image_set = False
        self.features = None
        self.original_size = self.input_size = None
        self.orig_h = self.orig_w = self.input_h = self.input_w = None
        self.__dict__["_synced"] = None

    # ------------------------------------------------------------------- prompts
    def predict(
        self,
        point_coords: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Masks (C x H x W), scores (C) and low-res logits (C x 256 x 256) for one prompt.

        Args:
            point_coords: N x 2 xy points in original pixels.
            point_labels: N labels (1 foreground, 0 background).
            box: 4 (x0, y0, x1, y1) in original pixels.
            mask_input: 1 x 256 x 256 low-res logits of an earlier call.
        """
        engine = self._current()
        if point_coords is not None and point_labels is None:
            raise ValueError("point_labels must be supplied if point_coords is supplied.")
        size = engine.embedding.original_size
        validate_prompts(point_coords, point_labels, box, mask_input, size, engine.spec)
        dev = self.device
        coords = labels = boxes = masks = None
        if point_coords is not None:
            pts = self.transform.apply_coords(point_coords, size)
            coords = torch.as_tensor(pts, dtype=torch.float, device=dev)[None]
            labels = torch.as_tensor(np.asarray(point_labels), dtype=torch.int, device=dev)[None]
        if box is not None:
            b = self.transform.apply_boxes(box, size)
            boxes = torch.as_tensor(b, dtype=torch.float, device=dev)[None].reshape(-1, 4)
        if mask_input is not None:
            masks = torch.as_tensor(np.asarray(mask_input), dtype=torch.float, device=dev)[None]
        out, iou, low_res = self.predict_torch(
            coords, labels, boxes, masks, multimask_output, return_logits=return_logits
        )
        return (
            out[0].detach().cpu().numpy(),
            iou[0].detach().float().cpu().numpy(),
            low_res[0].detach().float().cpu().numpy(),
        )

    def predict_torch(
        self,
        point_coords: torch.Tensor | None,
        point_labels: torch.Tensor | None,
        boxes: torch.Tensor | None = None,
        mask_input: torch.Tensor | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Batched prediction with prompts in the resized frame (see :attr:`transform`).

        Shapes: point_coords B x N x 2, point_labels B x N, boxes B x 4, mask_input
        B x 1 x 256 x 256; returns masks B x C x H x W, IoU B x C, low-res B x C x 256 x 256.
        """
        engine = self._current()
        return engine.predict_torch(
            point_coords, point_labels, boxes, mask_input, multimask_output, return_logits
        )


def _size(value: Any, name: str) -> tuple[int, int]:
    """A (height, width) attribute as two ints, or an error naming the attribute."""
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        h = w = 0
    if h <= 0 or w <= 0:
        raise TijerasError(
            f"SamPredictor.{name} must be (height, width) when an image is set, got {value!r} "
            "(set features, original_size and input_size together)"
        )
    return h, w


def _writable(image: Any) -> Any:
    """A PIL image or a read-only array as a writable array (torch warns on read-only ones)."""
    if isinstance(image, np.ndarray):
        return image if image.flags.writeable else image.copy()
    if hasattr(image, "convert") and hasattr(image, "size"):  # a PIL image
        return np.array(image.convert("RGB"))
    return image
