"""The predictor: encode an image once, then decode any number of prompts against it.

Prompts given to :meth:`Predictor.predict` are in original image pixels; :meth:`Predictor.decode`
takes a :class:`~tijeras.types.PromptBatch` already in the model's input frame. Every caller
that turns prompts into masks (the drop-in predictors, everything mode, the server's clicks and
hover) goes through :meth:`Predictor.decode`. Shapes: B prompts, N points per prompt, C mask
candidates, H x W original image pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..contract import SegmentationModel, check_prompt_kinds
from ..types import (
    Decoded,
    ImageEmbedding,
    Instances,
    MaskPrediction,
    PreparedImage,
    PromptBatch,
)
from . import transforms
from .cache import LRUCache, image_key
from .embedding_file import load_embedding, save_embedding
from .prompts import Prompts, validate_prompts

ImageSource = Any  # a path, bytes, PIL image or array: see tijeras.io.load_image


class Predictor:
    """Segment one image at a time with any model of the contract.

    Args:
        model: a model from :func:`tijeras.load_model` or :func:`tijeras.build_model`.
        cache_size: how many image embeddings to keep, keyed by image content, so an image
            seen again is not encoded again (0 disables the cache and the hashing of pixels).
        model_name: the name recorded in saved embeddings (defaults to the model's name).
    """

    def __init__(
        self, model: SegmentationModel, *, cache_size: int = 4, model_name: str = ""
    ) -> None:
        if not isinstance(model, SegmentationModel):
            raise TypeError(
                f"{type(model).__name__} is not a tijeras model (see tijeras.contract); build one "
                "with tijeras.load_model or tijeras.build_model"
            )
        self.model = model
        self.spec = model.input_spec
        self.model_name = model_name or getattr(model, "name", type(model).__name__)
        self.cache: LRUCache[ImageEmbedding] = LRUCache(cache_size)
        self._embedding: ImageEmbedding | None = None
        self._prepared: PreparedImage | None = None

    # ---------------------------------------------------------------- image side
    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def embedding(self) -> ImageEmbedding | None:
        """The current image's embedding, or None."""
        return self._embedding

    @property
    def is_image_set(self) -> bool:
        return self._embedding is not None

    def _require_embedding(self) -> ImageEmbedding:
        if self._embedding is None:
            raise RuntimeError("An image must be set with set_image(...) before mask prediction.")
        return self._embedding

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
        key = image_key(array, salt=self._cache_salt()) if self.cache.capacity else None
        cached = None if key is None else self.cache.get(key)
        if cached is None:
            resized = transforms.resize_for(self.spec, np.ascontiguousarray(array))
            tensor = transforms.image_to_tensor(resized, self.device)
            cached = self.encode(tensor, (array.shape[0], array.shape[1]))
            if key is not None:
                self.cache.put(key, cached)
        self._use(cached)
        return cached

    def _cache_salt(self) -> str:
        return f"{self.model_name}|{id(self.model)}|{self.model.encoder_dtype}|{self.device}"

    @torch.inference_mode()
    def encode(self, input_image: torch.Tensor, original_size: tuple[int, int]) -> ImageEmbedding:
        """Run the image encoder on a 1 x 3 x h x w resized image (0-255 values)."""
        if input_image.ndim != 4 or input_image.shape[:2] != (1, 3):
            raise ValueError(f"input image must be 1 x 3 x h x w, got {tuple(input_image.shape)}")
        if max(input_image.shape[-2:]) != self.spec.image_size:
            raise ValueError(
                f"the longest side of the input image must be {self.spec.image_size}, "
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
        expected = self.spec.embedding_grid
        if tuple(embedding.features.shape[-2:]) != tuple(expected):
            raise ValueError(
                f"embedding grid {tuple(embedding.features.shape[-2:])} does not fit this model "
                f"(expects {tuple(expected)})"
            )
        self._use(embedding.to(self.device, self.model.encoder_dtype))

    def _use(self, embedding: ImageEmbedding) -> None:
        if embedding is not self._embedding:
            self._embedding, self._prepared = embedding, None

    def reset_image(self) -> None:
        """Forget the current image (the content cache is kept)."""
        self._embedding, self._prepared = None, None

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
        return self._require_embedding()

    @property
    def prepared(self) -> PreparedImage:
        """The current image with the decoder's prompt-independent part (computed once)."""
        if self._prepared is None:
            with torch.inference_mode():
                self._prepared = self.model.prepare(self._require_embedding())
        return self._prepared

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
            point_coords, point_labels, box, mask_input, emb.original_size, self.spec
        )
        batch = self.to_input_frame(prompts)
        out_masks, iou, low_res = self._predict(batch, multimask_output, return_logits)
        result = MaskPrediction(
            masks=out_masks.cpu().numpy(),
            scores=iou.float().cpu().numpy(),
            low_res_logits=low_res.float().cpu().numpy(),
        )
        if not prompts.batched:
            result = MaskPrediction(result.masks[0], result.scores[0], result.low_res_logits[0])
        return result

    def to_input_frame(self, prompts: Prompts) -> PromptBatch:
        """Validated prompts in original pixels -> a :class:`PromptBatch` in the input frame."""
        emb = self._require_embedding()
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
        return PromptBatch(points=coords, labels=labels, boxes=boxes, masks=masks)

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
        batch = prompt_batch(point_coords, point_labels, boxes, mask_input)
        return self._predict(batch, multimask_output, return_logits)

    @torch.inference_mode()
    def _predict(
        self, batch: PromptBatch, multimask: bool, return_logits: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        emb = self._require_embedding()
        decoded = self.decode(batch, multimask=multimask)
        low_res = decoded.low_res_logits
        masks = self.model.postprocess_masks(low_res.float(), emb.input_size, emb.original_size)
        if not return_logits:
            masks = masks > self.spec.mask_threshold
        return masks, decoded.iou_scores, low_res

    @torch.inference_mode()
    def decode(
        self, prompts: PromptBatch, *, multimask: bool = True, masks_only: bool = False
    ) -> Decoded:
        """Decode B input-frame prompts against the current image: the one decode path.

        ``masks_only``: the caller only upscales the logits to masks, so a model may skip the
        logits outside the unpadded image (they are then not meaningful as mask prompts).
        """
        check_prompt_kinds(self.spec, prompts, self.model_name)
        return self.model.decode(self.prepared, prompts, multimask=multimask, masks_only=masks_only)

    @torch.inference_mode()
    def best_mask(
        self, prompts: PromptBatch, size: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The best candidate of each of B prompts as B x h x w bool masks at ``size`` (h, w),
        and its B scores: what hover and quick previews need, upscaling one mask per prompt."""
        emb = self._require_embedding()
        decoded = self.decode(prompts, multimask=True, masks_only=True)
        best = decoded.iou_scores.argmax(dim=1)
        rows = torch.arange(len(best), device=best.device)
        low_res = decoded.low_res_logits[rows, best][:, None].float()
        logits = self.model.postprocess_masks(low_res, emb.input_size, size)[:, 0]
        return logits > self.spec.mask_threshold, decoded.iou_scores[rows, best]

    # ------------------------------------------------------- concept prompts (SAM 3)
    def segment_text(
        self,
        text: str,
        *,
        threshold: float = 0.5,
        exemplars: Any = None,
        exemplar_labels: Any = None,
    ) -> Instances:
        """Every instance of a noun phrase (``"tomato"``) in the current image.

        Args:
            text: the phrase (1 to 30 CLIP tokens for SAM 3).
            threshold: instances scoring above it are kept (0-1; 0.5 as Meta's processor).
            exemplars: optional 4 or E x 4 boxes x0, y0, x1, y1 (original pixels) refining the
                concept: examples, or counter-examples where ``exemplar_labels`` is 0.
            exemplar_labels: E labels, 1 (an example, the default) or 0 (a counter-example).

        Returns:
            :class:`~tijeras.types.Instances`, best first; none when nothing matches.
        """
        return self.segment_concept(text, exemplars, exemplar_labels, threshold=threshold)

    def segment_exemplar(
        self,
        box: Any,
        *,
        labels: Any = None,
        text: str | None = None,
        threshold: float = 0.5,
    ) -> Instances:
        """Every instance of what the example box(es) show, optionally with a phrase.

        Args:
            box: 4 or E x 4 boxes x0, y0, x1, y1 in original pixels.
            labels: E labels, 1 (an example, the default) or 0 (a counter-example).
            text: a phrase to combine with the boxes, or None.
            threshold: instances scoring above it are kept (0-1).
        """
        return self.segment_concept(text, box, labels, threshold=threshold)

    @torch.inference_mode()
    def segment_concept(
        self, text: str | None, boxes: Any, labels: Any, *, threshold: float = 0.5
    ) -> Instances:
        """A phrase and/or exemplar boxes (original pixels) -> the instances above
        ``threshold``, decoded through :meth:`decode` as a one-prompt :class:`PromptBatch`."""
        from ..errors import PromptError

        emb = self._require_embedding()
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, (int, float))
            or not (0.0 <= float(threshold) <= 1.0)
        ):
            raise PromptError(f"threshold must be a number in [0, 1], got {threshold!r}")
        if text is not None and not isinstance(text, str):
            raise PromptError(f"a text prompt must be a string, got {type(text).__name__}")
        if text is None and boxes is None:
            raise PromptError("no concept given: pass a phrase, exemplar boxes or both")
        batch = PromptBatch(
            text=None if text is None else (text,), **self._exemplars(boxes, labels)
        )
        decoded = self.decode(batch, multimask=False, masks_only=True)
        return concept_instances(self.model, emb, decoded, float(threshold), text)

    def _exemplars(self, boxes: Any, labels: Any) -> dict[str, torch.Tensor | None]:
        """Exemplar boxes (original pixels, checked like any box) in the input frame:
        1 x E x 4 boxes and 1 x E labels."""
        from ..errors import PromptError

        if boxes is None:
            if labels is not None:
                raise PromptError("exemplar labels were given without exemplar boxes")
            return {"exemplar_boxes": None, "exemplar_labels": None}
        emb = self._require_embedding()
        checked = validate_prompts(None, None, boxes, None, emb.original_size, self.spec).boxes
        count = checked.shape[0]
        flat = (checked[:, 2] <= checked[:, 0]) | (checked[:, 3] <= checked[:, 1])
        if flat.any():
            x0, y0, x1, y1 = checked[flat][0]
            raise PromptError(
                f"exemplar box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) has no area: an example box "
                "needs x0 < x1 and y0 < y1"
            )
        if labels is None:
            values = np.ones(count, dtype=np.int64)
        else:
            values = np.asarray(labels).reshape(-1)
            if values.shape != (count,) or not np.isin(values, (0, 1)).all():
                raise PromptError(
                    f"exemplar labels must be {count} values, each 1 (an example) or 0 (a "
                    f"counter-example), got {labels!r}"
                )
        scaled = transforms.scale_boxes(
            torch.from_numpy(checked), emb.original_size, emb.input_size
        )
        return {
            "exemplar_boxes": scaled[None].to(self.device),
            "exemplar_labels": torch.as_tensor(values[None], dtype=torch.long, device=self.device),
        }


def prompt_batch(
    point_coords: torch.Tensor | None,
    point_labels: torch.Tensor | None,
    boxes: torch.Tensor | None = None,
    mask_input: torch.Tensor | None = None,
) -> PromptBatch:
    """A :class:`PromptBatch` from Meta-style input-frame tensors, with errors that name them."""
    from ..errors import PromptError

    if point_coords is not None and point_labels is None:
        raise PromptError("point_labels must be given with point_coords")
    try:
        return PromptBatch(points=point_coords, labels=point_labels, boxes=boxes, masks=mask_input)
    except ValueError as exc:
        raise PromptError(str(exc).removeprefix("PromptBatch: ")) from None


def concept_instances(
    model: SegmentationModel,
    embedding: ImageEmbedding,
    decoded: Decoded,
    threshold: float,
    text: str | None,
) -> Instances:
    """The queries of a one-prompt concept :class:`Decoded` scoring above ``threshold`` as
    :class:`Instances` in original pixels, best first (masks upscaled for those only)."""
    scores = decoded.iou_scores[0].float()
    keep = torch.nonzero(scores > threshold).flatten()
    keep = keep[scores[keep].argsort(descending=True)]
    h, w = embedding.original_size
    ih, iw = embedding.input_size
    boxes = decoded.extra["boxes"][0, keep].float()
    boxes = boxes * boxes.new_tensor([w / iw, h / ih, w / iw, h / ih])
    boxes = torch.minimum(boxes.clamp(min=0), boxes.new_tensor([w, h, w, h]))
    if len(keep):
        low = decoded.low_res_logits[0, keep][None].float()
        logits = model.postprocess_masks(low, embedding.input_size, embedding.original_size)[0]
        masks = (logits > model.input_spec.mask_threshold).cpu().numpy()
    else:
        masks = np.zeros((0, h, w), dtype=bool)
    presence = decoded.extra.get("presence_logits")
    return Instances(
        masks=masks,
        boxes=boxes.cpu().numpy().astype(np.float32),
        scores=scores[keep].cpu().numpy().astype(np.float32),
        text=text,
        presence=0.0 if presence is None else float(presence.float().sigmoid().flatten()[0]),
    )
