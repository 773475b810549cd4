"""``SAM2ImagePredictor`` with Meta's methods, arguments and return conventions, on tijeras'
predictor engine (content cache, fast decoder).

Outputs follow Meta's: ``predict`` returns numpy float32 masks C x H x W (0/1 unless
``return_logits``), IoU scores C and low-res logits C x 256 x 256 clamped to [-32, 32]; a batch
of B prompts gives B x C x ... arrays. Prompts are checked by the engine's one validation (a
point outside the image is an error naming it) and decoded by the engine's one decode path.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..automatic.generator import LOW_RES_CLAMP
from ..engine.predictor import Predictor
from ..engine.prompts import validate_prompts
from ..types import ImageEmbedding, PromptBatch
from .transforms import SAM2Transforms, _rgb_array

BUILDER_ARGUMENTS = ("device", "mode", "hydra_overrides_extra", "apply_postprocessing")
"""Keyword arguments of ``from_pretrained`` that go to the model builder, not the class."""


class SAM2ImagePredictor:
    """Encode an image once with a SAM 2 model, then predict masks for prompts.

    Args:
        sam_model: a model from :func:`tijeras.sam2.build_sam2` (or ``tijeras.load_model``).
        mask_threshold: logit threshold of the binary masks.
        max_hole_area: fill background regions of the low-res masks up to this area (0: off).
        max_sprinkle_area: remove foreground specks of the low-res masks up to this area.

    Meta's internals that tooling reads are here too: ``_transforms`` (a
    :class:`~tijeras.sam2.transforms.SAM2Transforms`), ``_features``, ``_orig_hw``,
    ``_is_image_set``, ``_is_batch``, ``_bb_feat_sizes``, ``_prep_prompts`` and ``_predict``.
    """

    def __init__(
        self,
        sam_model: torch.nn.Module,
        mask_threshold: float = 0.0,
        max_hole_area: float = 0.0,
        max_sprinkle_area: float = 0.0,
    ) -> None:
        self._engine = Predictor(sam_model, cache_size=2)
        self.model = sam_model
        self.mask_threshold = mask_threshold
        self._transforms = SAM2Transforms(
            resolution=sam_model.image_size,
            mask_threshold=mask_threshold,
            max_hole_area=max_hole_area,
            max_sprinkle_area=max_sprinkle_area,
        )
        side = sam_model.image_size
        self._bb_feat_sizes = [(side // 4, side // 4), (side // 8, side // 8), (side // 16,) * 2]
        self._engines: list[Predictor] = []
        self.reset_predictor()

    @classmethod
    def from_pretrained(cls, model_id: str, **kwargs: Any) -> SAM2ImagePredictor:
        """A predictor for a model by Hugging Face id (``"facebook/sam2.1-hiera-tiny"``) or
        registered name, its weights found in tijeras' cache (see
        :func:`tijeras.sam2.build.build_sam2_hf`).

        ``device``, ``mode``, ``hydra_overrides_extra`` and ``apply_postprocessing`` go to the
        builder (Meta's defaults: ``device="cuda"``), every other keyword to the predictor.
        """
        from .build import build_sam2_hf

        built = {k: kwargs.pop(k) for k in BUILDER_ARGUMENTS if k in kwargs}
        return cls(build_sam2_hf(model_id, **built), **kwargs)

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def max_hole_area(self) -> float:
        return self._transforms.max_hole_area

    @max_hole_area.setter
    def max_hole_area(self, value: float) -> None:
        self._transforms.max_hole_area = value

    @property
    def max_sprinkle_area(self) -> float:
        return self._transforms.max_sprinkle_area

    @max_sprinkle_area.setter
    def max_sprinkle_area(self, value: float) -> None:
        self._transforms.max_sprinkle_area = value

    # ---------------------------------------------------------------- images
    def set_image(self, image: Any) -> None:
        """Encode an H x W x 3 RGB array (0-255) or a PIL image."""
        self.reset_predictor()
        emb = self._engine.set_image(_rgb_array(image))
        self._engines = [self._engine]
        self._orig_hw = [emb.original_size]
        self._is_image_set = True

    def set_image_batch(self, image_list: list[np.ndarray]) -> None:
        """Encode several images for :meth:`predict_batch`."""
        self.reset_predictor()
        if not isinstance(image_list, list):
            raise TypeError(f"image_list must be a list of arrays, got {type(image_list).__name__}")
        self._engines = []
        for img in image_list:
            engine = Predictor(self.model, cache_size=0)
            engine.set_image(_rgb_array(img))
            self._engines.append(engine)
        self._orig_hw = [e.original_size for e in self._embeddings]
        self._is_image_set = True
        self._is_batch = True

    @property
    def _embeddings(self) -> list[ImageEmbedding]:
        return [e.embedding for e in self._engines]

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
        self._engines = []
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
        masks, unnorm_coords, labels_t, unnorm_box = self._prep_prompts(
            coords, labels, box, mask_input, normalize_coords, img_idx=index
        )
        masks_out, iou, low_res = self._predict_prompts(
            self._engines[index],
            PromptBatch(
                points=unnorm_coords,
                labels=labels_t,
                boxes=None if unnorm_box is None else unnorm_box.reshape(-1, 4),
                masks=masks,
            ),
            multimask_output,
            return_logits,
        )
        return (
            masks_out.squeeze(0).float().cpu().numpy(),
            iou.squeeze(0).float().cpu().numpy(),
            low_res.squeeze(0).float().cpu().numpy(),
        )

    def _prep_prompts(
        self,
        point_coords: Any,
        point_labels: Any,
        box: Any,
        mask_logits: Any,
        normalize_coords: bool,
        img_idx: int = -1,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """Meta's prompt preparation: the mask input (B x 1 x 256 x 256), points (B x N x 2)
        and labels (B x N), and boxes (B x 2 x 2) in the 1024 x 1024 input frame.

        Coordinates are pixels when ``normalize_coords``, else already normalised to [0, 1];
        either way they are checked against the image first.
        """
        orig_hw = self._orig_hw[img_idx]
        h, w = orig_hw
        to_pixels = (lambda a: a) if normalize_coords else (lambda a: _scaled(a, w, h))
        validate_prompts(
            None if point_coords is None else to_pixels(point_coords),
            point_labels,
            None
            if box is None
            else to_pixels(np.asarray(box, dtype=np.float64).reshape(-1, 2, 2)).reshape(-1, 4),
            mask_logits,
            orig_hw,
            self.model.input_spec,
        )
        dev = self.device
        mask_input = unnorm_coords = labels = unnorm_box = None
        if point_coords is not None:
            xy = torch.as_tensor(np.asarray(point_coords), dtype=torch.float, device=dev)
            unnorm_coords = self._to_input_frame(xy, normalize_coords, orig_hw)
            labels = torch.as_tensor(np.asarray(point_labels), dtype=torch.int, device=dev)
            if unnorm_coords.ndim == 2:
                unnorm_coords, labels = unnorm_coords[None], labels[None]
        if box is not None:
            b = torch.as_tensor(np.asarray(box), dtype=torch.float, device=dev)
            unnorm_box = self._to_input_frame(b.reshape(-1, 2, 2), normalize_coords, orig_hw)
        if mask_logits is not None:
            mask_input = torch.as_tensor(np.asarray(mask_logits), dtype=torch.float, device=dev)
            if mask_input.ndim == 3:
                mask_input = mask_input[None]
        return mask_input, unnorm_coords, labels, unnorm_box

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

    def _predict(
        self,
        point_coords: torch.Tensor | None,
        point_labels: torch.Tensor | None,
        boxes: torch.Tensor | None = None,
        mask_input: torch.Tensor | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
        img_idx: int = -1,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Meta's torch-level prediction: prompts already in the input frame (from
        :meth:`_prep_prompts` or ``_transforms``): points B x N x 2 with labels B x N, boxes
        B x 2 x 2 (or B x 4), mask input B x 1 x 256 x 256. Returns masks B x C x H x W,
        IoU B x C and clamped low-res logits B x C x 256 x 256, as tensors."""
        if not self._is_image_set:
            raise RuntimeError("An image must be set with .set_image(...) before mask prediction.")
        prompts = PromptBatch(
            points=point_coords,
            labels=point_labels,
            boxes=None if boxes is None else boxes.reshape(-1, 4),
            masks=mask_input,
        )
        return self._predict_prompts(
            self._engines[img_idx], prompts, multimask_output, return_logits
        )

    @torch.inference_mode()
    def _predict_prompts(
        self,
        engine: Predictor,
        prompts: PromptBatch,
        multimask_output: bool,
        return_logits: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Masks B x C x H x W, IoU B x C, clamped low-res logits B x C x 256 x 256."""
        emb = engine.embedding
        decoded = engine.decode(prompts, multimask=multimask_output)
        low_res = decoded.low_res_logits.float()
        full = self._transforms.postprocess_masks(low_res, emb.original_size)
        if not return_logits:
            full = full > self.mask_threshold
        return full, decoded.iou_scores, low_res.clamp(-LOW_RES_CLAMP, LOW_RES_CLAMP)


def _scaled(coords: Any, w: int, h: int) -> np.ndarray:
    """Coordinates normalised to [0, 1] (... x 2, xy) -> pixels of a w x h image."""
    return np.asarray(coords, dtype=np.float64) * np.array([w, h], dtype=np.float64)
