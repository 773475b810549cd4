"""Everything mode: prompt SAM with a grid of points (optionally over crops) and keep the good,
non-overlapping masks.

``SamAutomaticMaskGenerator`` keeps the constructor arguments, defaults and output records of
Meta's generator of the same name. The work per batch of points: decode all candidates with the
fast decoder, drop those under the IoU threshold *before* upscaling, upscale the rest in small
chunks, compute stability, boxes and run-length encodings straight away so no full-size float
mask outlives its chunk, and concatenate the typed columns once per crop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.ops import box_area

from ..engine import transforms
from ..engine.predictor import Predictor
from ..io.rle import coco_rle
from ..types import PromptBatch
from . import filters
from .grid import crop_boxes, layer_point_grids
from .options import SAM_EVERYTHING, EverythingOptions
from .records import OUTPUT_MODES, MaskRecords, records_to_output, rle_to_mask

if TYPE_CHECKING:
    from ..types import ImageEmbedding

LOW_RES_CLAMP = 32.0  # low-res logits fed back as mask prompts are clamped to +-this
UPSCALE_CHUNK = 16  # candidates upscaled to full resolution at a time


def _option(name: str) -> property:
    """A generator attribute under Meta's name, read from and written to ``options``."""

    def read(self: AutoMaskGenerator) -> Any:
        return getattr(self.options, name)

    def write(self: AutoMaskGenerator, value: Any) -> None:
        self.options = self.options.replace(**{name: value})

    return property(read, write, doc=f"``options.{name}``")


class AutoMaskGenerator:
    """Generate masks for a whole image from a grid of point prompts (any prompt-grid family).

    Args:
        model: a model of the contract (``tijeras.load_model``).
        options: everything-mode options; None takes the model's own defaults
            (``model.everything_defaults``: Meta's for SAM, SAM 2's for SAM 2).
        output_mode: ``"binary_mask"``, ``"uncompressed_rle"`` or ``"coco_rle"``.
        point_grids: explicit grids (one per crop layer) of normalised xy points, instead of
            ``options.points_per_side``.
        low_res_cleanup: applied to the low-res logits of the candidates that pass the IoU
            threshold (N x 1 x h x w -> same), before they are upscaled: SAM 2's hole and
            speck filling. When given, it is the family's meaning of
            ``min_mask_region_area`` and the clean-up of the final masks is not run.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        options: EverythingOptions | None = None,
        *,
        output_mode: str = "binary_mask",
        point_grids: list[np.ndarray] | None = None,
        low_res_cleanup: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        options = model.everything_defaults if options is None else options
        if output_mode not in OUTPUT_MODES:
            raise ValueError(f"output_mode must be one of {OUTPUT_MODES}, got {output_mode!r}")
        if point_grids is None:
            point_grids = layer_point_grids(
                options.points_per_side,
                options.crop_n_layers,
                options.crop_n_points_downscale_factor,
            )
        elif len(point_grids) != options.crop_n_layers + 1:
            raise ValueError(
                f"point_grids has {len(point_grids)} grids; crop_n_layers="
                f"{options.crop_n_layers} needs {options.crop_n_layers + 1}"
            )
        self.engine = Predictor(model, cache_size=0)
        self.options = options
        self.point_grids = point_grids
        self.output_mode = output_mode
        self.low_res_cleanup = low_res_cleanup
        self.progress: Any = None  # optional callable(done, total) over point batches
        self._embedding: ImageEmbedding | None = None

    # Meta's attribute names, read from the options; assigning one (as user code does with
    # Meta's generator) replaces the options, checked like any other change.
    mask_threshold = _option("mask_threshold")
    points_per_batch = _option("points_per_batch")
    pred_iou_thresh = _option("pred_iou_thresh")
    stability_score_thresh = _option("stability_score_thresh")
    stability_score_offset = _option("stability_score_offset")
    box_nms_thresh = _option("box_nms_thresh")
    crop_n_layers = _option("crop_n_layers")
    crop_nms_thresh = _option("crop_nms_thresh")
    crop_overlap_ratio = _option("crop_overlap_ratio")
    crop_n_points_downscale_factor = _option("crop_n_points_downscale_factor")
    min_mask_region_area = _option("min_mask_region_area")
    use_m2m = _option("use_m2m")
    multimask_output = _option("multimask_output")

    @torch.inference_mode()
    def generate(self, image: Any, embedding: ImageEmbedding | None = None) -> list[dict[str, Any]]:
        """Masks for an image (H x W x 3 uint8 RGB array, path, bytes or PIL image).

        ``embedding``, the image's embedding computed earlier by this model (for example by
        a :class:`~tijeras.Predictor`), spares encoding the whole image again.

        Returns:
            one record per mask: ``segmentation`` (per ``output_mode``), ``area``, ``bbox``
            (XYWH), ``predicted_iou``, ``point_coords``, ``stability_score``, ``crop_box`` (XYWH).
        """
        from ..io.image import load_image

        array = image if _is_rgb_array(image) else load_image(image)
        self._embedding = embedding
        try:
            records = self.generate_records(array)
        finally:
            self._embedding = None
        return self.to_output(records)

    def generate_records(self, image: np.ndarray) -> MaskRecords:
        """The kept masks as typed columns (before output formatting)."""
        size = (image.shape[0], image.shape[1])
        boxes, layers = crop_boxes(size, self.crop_n_layers, self.crop_overlap_ratio)
        total = sum(-(-len(self.point_grids[layer]) // self.points_per_batch) for layer in layers)
        self._done, self._total = 0, total
        parts = [self._process_crop(image, box, layer) for box, layer in zip(boxes, layers)]
        data = MaskRecords.cat(parts)
        if len(boxes) > 1 and len(data):
            scores = 1 / box_area(data.crop_boxes.float())
            data = data.filter(filters.nms(data.boxes, scores, self.crop_nms_thresh))
        if self.min_mask_region_area > 0 and len(data) and self.low_res_cleanup is None:
            data = self._remove_small_regions(data, size)
        return data

    def _process_crop(self, image: np.ndarray, crop_box: list[int], layer: int) -> MaskRecords:
        x0, y0, x1, y1 = crop_box
        crop = np.ascontiguousarray(image[y0:y1, x0:x1])
        crop_size = (crop.shape[0], crop.shape[1])
        given = getattr(self, "_embedding", None)
        if given is not None and crop_size == image.shape[:2] and given.original_size == crop_size:
            self.engine.set_embedding(given)
        else:
            self.engine.set_image(crop)
        points = self.point_grids[layer] * np.array(crop_size)[None, ::-1]
        parts = []
        for start in range(0, len(points), self.points_per_batch):
            batch = points[start : start + self.points_per_batch]
            parts.append(self._process_batch(batch, crop_size, crop_box, image.shape[:2]))
            self._done += 1
            if self.progress is not None:
                self.progress(self._done, self._total)
        data = MaskRecords.cat(parts)
        if len(data):
            data = data.filter(filters.nms(data.boxes, data.iou, self.box_nms_thresh))
        data = self._encode(data, crop_size, crop_box, (image.shape[0], image.shape[1]))
        self.engine.reset_image()
        offset = torch.tensor([x0, y0, x0, y0])
        data.boxes = data.boxes + offset
        data.points = data.points + offset[:2]
        data.crop_boxes = torch.tensor([crop_box], dtype=torch.int64).expand(len(data), 4)
        if not len(data):
            # Meta's generator marks a crop without masks with a float column, which turns
            # every crop box of the image into floats when concatenated: kept for its records.
            data.crop_boxes = data.crop_boxes.float()
        return data

    def _process_batch(
        self,
        points: np.ndarray,
        crop_size: tuple[int, int],
        crop_box: list[int],
        image_size: tuple[int, int],
    ) -> MaskRecords:
        engine = self.engine
        emb = engine.embedding
        model = engine.model
        coords = transforms.scale_coords(torch.from_numpy(points), crop_size, emb.input_size)
        labels = torch.ones(len(points), 1, dtype=torch.int, device=engine.device)
        low_res, iou = self._decode_points(coords[:, None, :].to(engine.device), labels)
        per_point = low_res.shape[1]
        low_res, iou = low_res.flatten(0, 1), iou.flatten(0, 1).float()
        pts = torch.from_numpy(np.repeat(points, per_point, axis=0))
        keep = torch.arange(len(iou), device=iou.device)
        if self.pred_iou_thresh > 0:
            keep = keep[iou[keep] > self.pred_iou_thresh]
        if self.low_res_cleanup is not None and len(keep):
            cleaned = self.low_res_cleanup(low_res[keep][:, None].float())[:, 0]
            low_res[keep] = cleaned.to(low_res.dtype)
        threshold = self.mask_threshold
        h, w = image_size
        full_box = [0, 0, w, h]
        parts, chosen_all, passed = [], [], 0
        for start in range(0, len(keep), UPSCALE_CHUNK):
            idx = keep[start : start + UPSCALE_CHUNK]
            logits = model.postprocess_masks(
                low_res[idx][:, None].float(), emb.input_size, crop_size
            )[:, 0]
            stability = filters.stability_score(logits, threshold, self.stability_score_offset)
            ok = torch.ones_like(stability, dtype=torch.bool)
            if self.stability_score_thresh > 0:
                ok = stability >= self.stability_score_thresh
            # Indexing with an all-true selection would copy every candidate's logits.
            passed += int(ok.sum())
            masks = (logits if bool(ok.all()) else logits[ok]) > threshold
            del logits
            boxes = filters.masks_to_boxes(masks)
            del masks
            inside = ~filters.near_crop_edge(boxes, crop_box, full_box)
            chosen = idx[ok][inside]
            chosen_all.append(chosen)
            parts.append(
                MaskRecords(
                    rles=[None] * len(chosen),
                    iou=iou[chosen].cpu(),
                    stability=stability[ok][inside].cpu(),
                    points=pts[chosen.cpu()],
                    boxes=boxes[inside].cpu(),
                    crop_boxes=torch.zeros(len(chosen), 4, dtype=torch.int64),
                )
            )
        data = MaskRecords.cat(parts)
        if not passed:
            # Meta's generator gives float boxes to a batch without masks, which turns every
            # box of the crop into floats when concatenated: kept for its records.
            data.boxes = data.boxes.float()
        # Masks are encoded after the crop's NMS (most candidates do not survive it), from
        # their low-res logits: the same computation again gives the same mask. Copied once,
        # and not at all when every candidate is kept.
        chosen = torch.cat(chosen_all) if chosen_all else keep[:0]
        if len(chosen) == len(low_res):
            data.low_res = low_res.float()
        else:
            data.low_res = low_res[chosen].float()
        return data

    def _decode_points(
        self, coords: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Low-res logits (B x C x 256 x 256) and IoU (B x C) of B single-point prompts (B x 1
        x 2 input-frame coordinates, B x 1 labels): C = 3 candidates (1 without
        ``multimask_output``), each refined once with its own logits as the mask prompt when
        ``use_m2m``. Only masks are made from them, so logits outside the image may be skipped.
        """
        decode = self.engine.decode
        multimask, m2m = self.options.multimask_output, self.options.use_m2m
        first = decode(PromptBatch(coords, labels), multimask=multimask, masks_only=not m2m)
        low_res, iou = first.low_res_logits, first.iou_scores
        if not m2m:
            return low_res, iou
        b, c = iou.shape
        flat_coords = coords.repeat_interleave(c, dim=0)
        flat_labels = labels.repeat_interleave(c, dim=0)
        prompts = low_res.flatten(0, 1)[:, None].clamp(-LOW_RES_CLAMP, LOW_RES_CLAMP)
        step = self.options.points_per_batch
        parts = [
            decode(
                PromptBatch(
                    flat_coords[i : i + step],
                    flat_labels[i : i + step],
                    masks=prompts[i : i + step],
                ),
                multimask=False,
                masks_only=True,
            )
            for i in range(0, b * c, step)
        ]
        refined = torch.cat([p.low_res_logits for p in parts]).view(b, c, *low_res.shape[-2:])
        return refined, torch.cat([p.iou_scores for p in parts]).view(b, c)

    def _encode(
        self,
        data: MaskRecords,
        crop_size: tuple[int, int],
        crop_box: list[int],
        image_size: tuple[int, int],
    ) -> MaskRecords:
        """Full-image compressed RLEs of the candidates kept, from their low-res logits."""
        if data.low_res is None or not len(data):
            data.low_res = None
            return data
        model = self.engine.model
        input_size = self.engine.embedding.input_size
        h, w = image_size
        x0, y0, x1, y1 = crop_box
        rles: list[dict] = []
        for start in range(0, len(data), UPSCALE_CHUNK):
            low = data.low_res[start : start + UPSCALE_CHUNK]
            logits = model.postprocess_masks(low[:, None], input_size, crop_size)[:, 0]
            masks = logits > self.mask_threshold
            if crop_box != [0, 0, w, h]:
                masks = F.pad(masks, (x0, w - x1, y0, h - y1), value=False)
            rles.extend(coco_rle(masks))
        data.rles, data.low_res = rles, None
        return data

    def _remove_small_regions(self, data: MaskRecords, size: tuple[int, int]) -> MaskRecords:
        masks, unchanged = [], []
        for rle in data.rles:
            mask = rle_to_mask(rle)
            mask, changed_holes = filters.remove_small_regions(
                mask, self.min_mask_region_area, "holes"
            )
            mask, changed_islands = filters.remove_small_regions(
                mask, self.min_mask_region_area, "islands"
            )
            masks.append(torch.from_numpy(mask))
            unchanged.append(float(not (changed_holes or changed_islands)))
        stacked = torch.stack(masks)
        boxes = filters.masks_to_boxes(stacked)
        scores = torch.tensor(unchanged)
        keep = filters.nms(boxes, scores, self.box_nms_thresh)
        for i in keep.tolist():
            if scores[i] == 0.0:
                data.rles[i] = coco_rle(stacked[i : i + 1])[0]
                data.boxes[i] = boxes[i]
        return data.filter(keep)

    def to_output(self, data: MaskRecords) -> list[dict[str, Any]]:
        """Records in Meta's format, with ``segmentation`` as ``output_mode`` asks."""
        return records_to_output(data, self.output_mode)


def _is_rgb_array(image: Any) -> bool:
    return (
        isinstance(image, np.ndarray)
        and image.ndim == 3
        and image.shape[2] == 3
        and image.dtype == np.uint8
    )


_D = SAM_EVERYTHING


class SamAutomaticMaskGenerator(AutoMaskGenerator):
    """Meta's ``SamAutomaticMaskGenerator``: the same constructor arguments and defaults.

    Args:
        model: a SAM-family model (``tijeras.load_model`` or ``sam_model_registry``).
        points_per_side: points along each side of the grid (``points_per_side**2`` prompts);
            None when ``point_grids`` is given.
        points_per_batch: prompts decoded together.
        pred_iou_thresh: keep masks whose predicted IoU is above this (0 keeps all).
        stability_score_thresh: keep masks whose stability score is at least this (0 keeps all).
        stability_score_offset: logit offset for the stability score.
        box_nms_thresh: box IoU above which a lower-scoring mask of one crop is dropped.
        crop_n_layers: extra layers of crops (layer i has 4**i crops).
        crop_nms_thresh: box IoU for removing duplicates between crops.
        crop_overlap_ratio: overlap of neighbouring crops, as a fraction of the short side.
        crop_n_points_downscale_factor: points per side divided by this at each layer.
        point_grids: explicit grids (one per layer) of normalised xy points.
        min_mask_region_area: fill holes and remove islands smaller than this many pixels.
        output_mode: ``"binary_mask"``, ``"uncompressed_rle"`` or ``"coco_rle"``.

    The defaults are :data:`~tijeras.automatic.options.SAM_EVERYTHING`'s.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        points_per_side: int | None = _D.points_per_side,
        points_per_batch: int = _D.points_per_batch,
        pred_iou_thresh: float = _D.pred_iou_thresh,
        stability_score_thresh: float = _D.stability_score_thresh,
        stability_score_offset: float = _D.stability_score_offset,
        box_nms_thresh: float = _D.box_nms_thresh,
        crop_n_layers: int = _D.crop_n_layers,
        crop_nms_thresh: float = _D.crop_nms_thresh,
        crop_overlap_ratio: float = _D.crop_overlap_ratio,
        crop_n_points_downscale_factor: int = _D.crop_n_points_downscale_factor,
        point_grids: list[np.ndarray] | None = None,
        min_mask_region_area: int = _D.min_mask_region_area,
        output_mode: str = "binary_mask",
    ) -> None:
        options = meta_options(
            model.everything_defaults,
            points_per_side,
            point_grids,
            points_per_batch=points_per_batch,
            pred_iou_thresh=pred_iou_thresh,
            stability_score_thresh=stability_score_thresh,
            stability_score_offset=stability_score_offset,
            box_nms_thresh=box_nms_thresh,
            crop_n_layers=crop_n_layers,
            crop_nms_thresh=crop_nms_thresh,
            crop_overlap_ratio=crop_overlap_ratio,
            crop_n_points_downscale_factor=crop_n_points_downscale_factor,
            min_mask_region_area=min_mask_region_area,
        )
        super().__init__(model, options, output_mode=output_mode, point_grids=point_grids)


def meta_options(
    base: EverythingOptions,
    points_per_side: int | None,
    point_grids: list[np.ndarray] | None,
    **values: Any,
) -> EverythingOptions:
    """Options from Meta's generator arguments, where exactly one of ``points_per_side`` and
    ``point_grids`` is given (the grids then set the points)."""
    if (points_per_side is None) == (point_grids is None):
        raise ValueError("exactly one of points_per_side or point_grids must be given")
    if points_per_side is not None:
        values["points_per_side"] = points_per_side
    return base.replace(**values)
