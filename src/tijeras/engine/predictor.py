"""The predictor: encode an image once, then decode any number of prompts against it.

Prompts given to :meth:`Predictor.predict` are in original image pixels; the ``*_torch`` methods
take prompts already mapped to the model's input frame (see :mod:`tijeras.engine.transforms`).
Shapes: B prompts, N points per prompt, C mask candidates, H x W original image pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import PromptError
from ..types import ImageEmbedding, MaskPrediction
from . import transforms
from .cache import LRUCache, image_key
from .embedding_file import load_embedding, save_embedding
from .prompts import Prompts, validate_prompts

ImageSource = Any  # a path, bytes, PIL image or array: see tijeras.io.load_image


class Predictor:
    """Segment one image at a time with any SAM-family model.

    Args:
        model: a model from :func:`tijeras.build_model`.
        cache_size: how many image embeddings to keep, keyed by image content, so an image
            seen again is not encoded again (0 disables the cache).
        model_name: the name recorded in saved embeddings (defaults to the model class).
    """

    def __init__(
        self, model: torch.nn.Module, *, cache_size: int = 4, model_name: str = ""
    ) -> None:
        self.model = model
        self.model_name = model_name or getattr(model, "name", type(model).__name__)
        self.cache: LRUCache[ImageEmbedding] = LRUCache(cache_size)
        self.embedding: ImageEmbedding | None = None

    # ---------------------------------------------------------------- image side
    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def is_image_set(self) -> bool:
        return self.embedding is not None

    def _require_embedding(self) -> ImageEmbedding:
        if self.embedding is None:
            raise RuntimeError("An image must be set with set_image(...) before mask prediction.")
        return self.embedding

    def set_image(self, image: ImageSource, image_format: str = "RGB") -> ImageEmbedding:
        """Encode an image (path, bytes, PIL image or H x W x 3 uint8 array), using the cache."""
        from ..io.image import load_image

        if image_format not in ("RGB", "BGR"):
            raise ValueError(f"image_format must be 'RGB' or 'BGR', got {image_format!r}")
        if isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3:
            array = image if image.dtype == np.uint8 else load_image(image)
        else:
            array = load_image(image)
        if image_format == "BGR":
            array = array[..., ::-1]
        key = image_key(array, salt=self._cache_salt())
        cached = self.cache.get(key)
        if cached is None:
            resized = transforms.resize_for(self.model, np.ascontiguousarray(array))
            tensor = transforms.image_to_tensor(resized, self.device)
            cached = self.encode(tensor, (array.shape[0], array.shape[1]))
            self.cache.put(key, cached)
        self.embedding = cached
        return cached

    def _cache_salt(self) -> str:
        return f"{self.model_name}|{id(self.model)}|{self.model.encoder_dtype}|{self.device}"

    @torch.inference_mode()
    def encode(self, input_image: torch.Tensor, original_size: tuple[int, int]) -> ImageEmbedding:
        """Run the image encoder on a 1 x 3 x h x w resized image (0-255 values)."""
        if input_image.ndim != 4 or input_image.shape[:2] != (1, 3):
            raise ValueError(f"input image must be 1 x 3 x h x w, got {tuple(input_image.shape)}")
        if max(input_image.shape[-2:]) != self.model.image_size:
            raise ValueError(
                f"the longest side of the input image must be {self.model.image_size}, "
                f"got {tuple(input_image.shape[-2:])}"
            )
        size = (int(input_image.shape[-2]), int(input_image.shape[-1]))
        x = self.model.preprocess(input_image.to(self.device)).to(self.model.encoder_dtype)
        features, extra = self.model.encode_image(x)
        return ImageEmbedding(
            features=features,
            extra=extra,
            original_size=(int(original_size[0]), int(original_size[1])),
            input_size=size,
            model_name=self.model_name,
        )

    def set_embedding(self, embedding: ImageEmbedding) -> None:
        """Use a previously computed embedding (for example one loaded from a file)."""
        expected = self.model.embedding_grid
        if tuple(embedding.features.shape[-2:]) != tuple(expected):
            raise ValueError(
                f"embedding grid {tuple(embedding.features.shape[-2:])} does not fit this model "
                f"(expects {tuple(expected)})"
            )
        embedding.features = embedding.features.to(self.device, self.model.encoder_dtype)
        embedding.extra = {
            k: v.to(self.device, self.model.encoder_dtype) for k, v in embedding.extra.items()
        }
        self.embedding = embedding

    def reset_image(self) -> None:
        """Forget the current image (the content cache is kept)."""
        self.embedding = None

    def save_embedding(self, path: str | Path) -> Path:
        """Write the current image's embedding to a ``.safetensors`` file."""
        return save_embedding(self._require_embedding(), path)

    def load_embedding(self, path: str | Path) -> ImageEmbedding:
        """Read an embedding file written by :meth:`save_embedding` and make it current."""
        embedding = load_embedding(path)
        if embedding.model_name != self.model_name:
            raise ValueError(
                f"{path} was computed by model {embedding.model_name!r}, "
                f"but this predictor runs {self.model_name!r}"
            )
        self.set_embedding(embedding)
        return embedding

    # --------------------------------------------------------------- prompt side
    def predict(
        self,
        point_coords: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
    ) -> MaskPrediction:
        """Masks for one prompt, or for a batch of B prompts decoded in one call.

        Args:
            point_coords: N x 2 (or B x N x 2) xy points in original pixels.
            point_labels: N (or B x N) labels: 1 foreground, 0 background, -1 ignored padding.
            box: 4 (or B x 4) box x0, y0, x1, y1 in original pixels.
            mask_input: 1 x 256 x 256 (or B x 1 x 256 x 256) low-res logits of an earlier call.
            multimask_output: three candidates (part, subpart, whole) instead of one mask.
            return_logits: float logits instead of thresholded bool masks.

        Returns:
            A :class:`MaskPrediction` with C x H x W masks (B x C x H x W for a batch).
        """
        emb = self._require_embedding()
        prompts = validate_prompts(
            point_coords, point_labels, box, mask_input, emb.original_size, self.model
        )
        coords, labels, boxes, masks = self._to_input_frame(prompts, emb)
        out_masks, iou, low_res = self.predict_torch(
            coords, labels, boxes, masks, multimask_output, return_logits
        )
        result = MaskPrediction(
            masks=out_masks.cpu().numpy(),
            scores=iou.float().cpu().numpy(),
            low_res_logits=low_res.float().cpu().numpy(),
        )
        if not prompts.batched:
            result = MaskPrediction(result.masks[0], result.scores[0], result.low_res_logits[0])
        return result

    def _to_input_frame(
        self, prompts: Prompts, emb: ImageEmbedding
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        dev = self.device
        coords = labels = boxes = masks = None
        if prompts.coords is not None:
            coords = transforms.scale_coords(
                torch.from_numpy(prompts.coords), emb.original_size, emb.input_size
            ).to(dev)
            labels = torch.as_tensor(prompts.labels, dtype=torch.int, device=dev)
        if prompts.boxes is not None:
            boxes = transforms.scale_boxes(
                torch.from_numpy(prompts.boxes), emb.original_size, emb.input_size
            ).to(dev)
        if prompts.masks is not None:
            masks = torch.as_tensor(prompts.masks, dtype=torch.float, device=dev)
        return coords, labels, boxes, masks

    @torch.inference_mode()
    def predict_torch(
        self,
        point_coords: torch.Tensor | None,
        point_labels: torch.Tensor | None,
        boxes: torch.Tensor | None = None,
        mask_input: torch.Tensor | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Batched prediction with prompts already in the model's input frame.

        Args:
            point_coords: B x N x 2 points, or None.
            point_labels: B x N labels, or None.
            boxes: B x 4 boxes, or None.
            mask_input: B x 1 x 256 x 256 logits, or None.

        Returns:
            masks (B x C x H x W, bool unless ``return_logits``), IoU scores (B x C) and
            low-res logits (B x C x 256 x 256).
        """
        emb = self._require_embedding()
        low_res, iou = self.decode(point_coords, point_labels, boxes, mask_input, multimask_output)
        masks = self.model.postprocess_masks(low_res.float(), emb.input_size, emb.original_size)
        if not return_logits:
            masks = masks > self.model.mask_threshold
        return masks, iou, low_res

    @torch.inference_mode()
    def decode(
        self,
        point_coords: torch.Tensor | None,
        point_labels: torch.Tensor | None,
        boxes: torch.Tensor | None,
        mask_input: torch.Tensor | None,
        multimask_output: bool,
        image_only: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Low-res logits (B x C x 256 x 256) and IoU scores (B x C) for input-frame prompts.

        ``image_only``: the caller only upscales the logits to masks, so a model may skip the
        logits outside the unpadded image (they are then not meaningful as mask prompts).
        """
        emb = self._require_embedding()
        if point_coords is not None and point_labels is None:
            raise PromptError("point_labels must be given with point_coords")
        points = None if point_coords is None else (point_coords, point_labels)
        return self.model.decode_prompts(
            emb, points, boxes, mask_input, multimask_output, image_only=image_only
        )
