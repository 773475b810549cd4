"""``SAM2ImagePredictor`` with Meta's methods, arguments and return conventions, on tijeras'
predictor engine (content cache, fast decoder).

Outputs follow Meta's: ``predict`` returns numpy float32 masks C x H x W (0/1 unless
``return_logits``), IoU scores C and low-res logits C x 256 x 256 clamped to [-32, 32]; a batch
of B prompts gives B x C x ... arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..engine.predictor import Predictor
from ..errors import PromptError
from ..types import ImageEmbedding
from .holes import fill_holes_and_sprinkles

LOW_RES_CLAMP = 32.0


class SAM2ImagePredictor:
    """Encode an image once with a SAM 2 model, then predict masks for prompts.

    Args:
        sam_model: a model from :func:`tijeras.sam2.build_sam2` (or ``tijeras.load_model``).
        mask_threshold: logit threshold of the binary masks.
        max_hole_area: fill background regions of the low-res masks up to this area (0: off).
        max_sprinkle_area: remove foreground specks of the low-res masks up to this area.
    """

    def __init__(
        self,
        sam_model: torch.nn.Module,
        mask_threshold: float = 0.0,
        max_hole_area: float = 0.0,
        max_sprinkle_area: float = 0.0,
        **kwargs: Any,
    ) -> None:
        self.model = sam_model
        self.mask_threshold = mask_threshold
        self.max_hole_area = max_hole_area
        self.max_sprinkle_area = max_sprinkle_area
        self._engine = Predictor(sam_model, cache_size=2)
        self.reset_predictor()

    @property
    def device(self) -> torch.device:
        return self.model.device

    # ---------------------------------------------------------------- images
    def set_image(self, image: Any) -> None:
        """Encode an H x W x 3 RGB array (0-255) or a PIL image."""
        self.reset_predictor()
        emb = self._engine.set_image(_as_array(image))
        self._embeddings = [emb]
        self._orig_hw = [emb.original_size]
        self._is_image_set = True

    def set_image_batch(self, image_list: list[np.ndarray]) -> None:
        """Encode several images for :meth:`predict_batch`."""
        self.reset_predictor()
        if not isinstance(image_list, list):
            raise TypeError(f"image_list must be a list of arrays, got {type(image_list).__name__}")
        self._embeddings = [self._engine.set_image(_as_array(img)) for img in image_list]
        self._orig_hw = [e.original_size for e in self._embeddings]
        self._is_image_set = True
        self._is_batch = True

    @property
    def _features(self) -> dict[str, Any] | None:
        """Meta's feature dict: ``image_embed`` (B x 256 x 64 x 64), ``high_res_feats``."""
        if not self._is_image_set:
            return None
        embs = self._embeddings
        high = [torch.cat([e.extra[f"high_res_{i}"] for e in embs]) for i in (0, 1)]
        if not embs[0].extra:
            high = []
        return {"image_embed": torch.cat([e.features for e in embs]), "high_res_feats": high}

    def get_image_embedding(self) -> torch.Tensor:
        """The image embedding: 1 x 256 x 64 x 64 (B x ... after ``set_image_batch``)."""
        if not self._is_image_set:
            raise RuntimeError(
                "An image must be set with .set_image(...) to generate an embedding."
            )
        return self._features["image_embed"]

    def reset_predictor(self) -> None:
        """Forget the current image(s)."""
        self._embeddings: list[ImageEmbedding] = []
        self._orig_hw: list[tuple[int, int]] | None = None
        self._is_image_set = False
        self._is_batch = False
        self._engine.reset_image()

    # --------------------------------------------------------------- prompts
    def predict(
        self,
        point_coords: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
        normalize_coords: bool = True,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Masks for the current image.

        Args:
            point_coords: N x 2 (or B x N x 2) xy points, in pixels when ``normalize_coords``,
                else already normalised to [0, 1].
            point_labels: N (or B x N): 1 foreground, 0 background.
            box: 4 (or B x 4) x0 y0 x1 y1.
            mask_input: 1 x 256 x 256 (or B x 1 x 256 x 256) logits of an earlier call.

        Returns:
            masks C x H x W, scores C, low-res logits C x 256 x 256 (B x ... for a batch).
        """
        if not self._is_image_set:
            raise RuntimeError("An image must be set with .set_image(...) before mask prediction.")
        return self._predict_image(
            0,
            point_coords,
            point_labels,
            box,
            mask_input,
            multimask_output,
            return_logits,
            normalize_coords,
        )

    def predict_batch(
        self,
        point_coords_batch: list[np.ndarray] | None = None,
        point_labels_batch: list[np.ndarray] | None = None,
        box_batch: list[np.ndarray] | None = None,
        mask_input_batch: list[np.ndarray] | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
        normalize_coords: bool = True,
    ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        """:meth:`predict` for each image of :meth:`set_image_batch`: lists of the outputs."""
        if not self._is_batch:
            raise RuntimeError("predict_batch needs images set with .set_image_batch(...)")
        out: tuple[list, list, list] = ([], [], [])

        def pick(items: list | None, i: int) -> Any:
            return None if items is None else items[i]

        for i in range(len(self._embeddings)):
            result = self._predict_image(
                i,
                pick(point_coords_batch, i),
                pick(point_labels_batch, i),
                pick(box_batch, i),
                pick(mask_input_batch, i),
                multimask_output,
                return_logits,
                normalize_coords,
            )
            for column, value in zip(out, result):
                column.append(value)
        return out

    def _predict_image(
        self,
        index: int,
        coords: Any,
        labels: Any,
        box: Any,
        mask_input: Any,
        multimask_output: bool,
        return_logits: bool,
        normalize_coords: bool,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        emb = self._embeddings[index]
        points, boxes, masks = self._prep_prompts(
            coords, labels, box, mask_input, normalize_coords, emb.original_size
        )
        masks_out, iou, low_res = self._predict(
            emb, points, boxes, masks, multimask_output, return_logits
        )
        return (
            masks_out.squeeze(0).float().cpu().numpy(),
            iou.squeeze(0).float().cpu().numpy(),
            low_res.squeeze(0).float().cpu().numpy(),
        )

    def _prep_prompts(
        self,
        coords: Any,
        labels: Any,
        box: Any,
        mask_input: Any,
        normalize: bool,
        orig_hw: tuple[int, int],
    ) -> tuple[tuple[torch.Tensor, torch.Tensor] | None, torch.Tensor | None, torch.Tensor | None]:
        dev = self.device
        points = boxes = masks = None
        if coords is not None:
            if labels is None:
                raise PromptError("point_labels must be supplied if point_coords is supplied.")
            xy = self._to_input_frame(
                torch.as_tensor(np.asarray(coords), dtype=torch.float, device=dev),
                normalize,
                orig_hw,
            )
            lab = torch.as_tensor(np.asarray(labels), dtype=torch.int, device=dev)
            if xy.ndim == 2:
                xy, lab = xy[None], lab[None]
            if xy.ndim != 3 or xy.shape[-1] != 2 or lab.shape != xy.shape[:-1]:
                raise PromptError(
                    f"point_coords {tuple(np.shape(coords))} and point_labels "
                    f"{tuple(np.shape(labels))} must be N x 2 and N (or B x N x 2 and B x N)"
                )
            points = (xy, lab)
        if box is not None:
            b = torch.as_tensor(np.asarray(box), dtype=torch.float, device=dev)
            if b.shape[-1] != 4:
                raise PromptError(f"box must be 4 numbers or B x 4, got {tuple(b.shape)}")
            boxes = self._to_input_frame(b.reshape(-1, 2, 2), normalize, orig_hw).reshape(-1, 4)
        if mask_input is not None:
            masks = torch.as_tensor(np.asarray(mask_input), dtype=torch.float, device=dev)
            if masks.ndim == 3:
                masks = masks[None]
            expected = tuple(self.model.mask_input_size)
            if masks.ndim != 4 or masks.shape[1] != 1 or tuple(masks.shape[2:]) != expected:
                raise PromptError(
                    f"mask_input must be 1 x {expected[0]} x {expected[1]} "
                    f"(or B x 1 x ...), got {tuple(np.shape(mask_input))}"
                )
        return points, boxes, masks

    def _to_input_frame(
        self, coords: torch.Tensor, normalize: bool, orig_hw: tuple[int, int]
    ) -> torch.Tensor:
        """Pixels (or [0, 1] when not ``normalize``) -> the 1024 x 1024 input frame."""
        if normalize:
            h, w = orig_hw
            coords = coords.clone()
            coords[..., 0] = coords[..., 0] / w
            coords[..., 1] = coords[..., 1] / h
        return coords * self.model.image_size

    @torch.inference_mode()
    def _predict(
        self,
        emb: ImageEmbedding,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        masks: torch.Tensor | None,
        multimask_output: bool,
        return_logits: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Masks B x C x H x W, IoU B x C, clamped low-res logits B x C x 256 x 256."""
        low_res, iou = self.model.decode_prompts(emb, points, boxes, masks, multimask_output)
        low_res = low_res.float()
        cleaned = low_res
        if self.max_hole_area > 0 or self.max_sprinkle_area > 0:
            cleaned = fill_holes_and_sprinkles(
                low_res, self.mask_threshold, self.max_hole_area, self.max_sprinkle_area
            )
        full = self.model.postprocess_masks(cleaned, emb.input_size, emb.original_size)
        if not return_logits:
            full = full > self.mask_threshold
        return full, iou, low_res.clamp(-LOW_RES_CLAMP, LOW_RES_CLAMP)


def _as_array(image: Any) -> np.ndarray:
    """An H x W x 3 uint8 RGB array from an array or a PIL image."""
    if isinstance(image, np.ndarray):
        return image
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        Image = None  # type: ignore[assignment]
    if Image is not None and isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    raise TypeError(f"image must be a numpy array or a PIL image, got {type(image).__name__}")
