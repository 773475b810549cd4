"""``Sam3Processor``: Meta's SAM 3 image processor (same methods, state keys and outputs).

The state is a dict, as in Meta's processor. After a prompt it holds, for the N instances
scoring above the confidence threshold:

- ``"masks"``: N x 1 x H x W bool; ``"masks_logits"``: N x 1 x H x W probabilities (the low-res
  logits resized bilinearly to the image, then a sigmoid; ``masks`` is ``> 0.5``);
- ``"boxes"``: N x 4 float, x0, y0, x1, y1 in image pixels;
- ``"scores"``: N, ``sigmoid(logit) * sigmoid(presence)``;

and ``"original_height"``, ``"original_width"``, ``"embedding"`` (the encoded image),
``"text_prompt"`` and ``"geometric_prompt"`` (the exemplar boxes so far). A phrase that matches
nothing gives N = 0. Images are resized to ``resolution`` squared with an antialiased bilinear
filter on 8-bit values, as Meta's processor does.

``predict_inst`` is the interactive head (Meta's ``model.predict_inst``): points and boxes in
image pixels, SAM 2's outputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import ImageError, PromptError
from ..models.sam3.detector import upscale
from ..types import ImageEmbedding, PromptBatch

State = dict[str, Any]


class Sam3Processor:
    """Text and exemplar-box prompts on one image at a time.

    Args:
        model: a SAM 3 model (``build_sam3_image_model``).
        resolution: the model's input side (1008 for ``sam3``).
        device: where inputs go (default: the model's device).
        confidence_threshold: instances scoring above this are kept.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        resolution: int | None = None,
        device: str | torch.device | None = None,
        confidence_threshold: float = 0.5,
    ) -> None:
        size = model.config.image_size
        if resolution is not None and resolution != size:
            raise ValueError(f"resolution {resolution} differs from the model's input size {size}")
        self.model = model
        self.resolution = size
        self.device = torch.device(device) if device is not None else model.device
        self.confidence_threshold = _threshold(confidence_threshold)

    # ------------------------------------------------ image
    @torch.inference_mode()
    def set_image(self, image: Any, state: State | None = None) -> State:
        """Encode an image (PIL image, H x W x 3 uint8 array, or 3 x H x W tensor)."""
        state = {} if state is None else state
        pixels = _as_chw_uint8(image)
        height, width = int(pixels.shape[-2]), int(pixels.shape[-1])
        from torchvision.transforms.v2 import functional as TF

        size = [self.resolution, self.resolution]
        resized = TF.resize(pixels.to(self.device), size, antialias=True)
        x = self.model.preprocess(resized[None].float())
        features, extra = self.model.encode_image(x)
        embedding = ImageEmbedding(
            features, (height, width), (self.resolution, self.resolution), _name(self.model), extra
        )
        state.clear()
        state.update(
            original_height=height, original_width=width, embedding=self.model.prepare(embedding)
        )
        return state

    # ------------------------------------------------ prompts
    def set_text_prompt(self, prompt: str, state: State) -> State:
        """Set the noun phrase (replacing the previous one) and find its instances."""
        _need_image(state)
        self.model.tokenizer.encode(prompt)  # a clear error for an empty or over-long phrase
        state["text_prompt"] = prompt
        state.setdefault("geometric_prompt", [])
        return self._forward_grounding(state)

    def add_geometric_prompt(self, box: Any, label: bool, state: State) -> State:
        """Add an exemplar box (normalised centre x, centre y, width, height, as Meta's) that is
        an example (``label`` True) or a counter-example (False), and find the instances."""
        _need_image(state)
        values = np.asarray(box, dtype=np.float64).reshape(-1)
        if values.shape != (4,) or not np.all(np.isfinite(values)):
            raise PromptError(f"a box is 4 finite numbers (cx, cy, w, h in 0-1), got {box!r}")
        if values[2] <= 0 or values[3] <= 0:
            raise PromptError(f"box width and height must be positive, got {box!r}")
        state.setdefault("geometric_prompt", []).append((values.tolist(), bool(label)))
        return self._forward_grounding(state)

    def reset_all_prompts(self, state: State) -> None:
        """Remove the prompts and results (the image stays encoded)."""
        for key in ("text_prompt", "geometric_prompt", "boxes", "masks", "masks_logits", "scores"):
            state.pop(key, None)

    def set_confidence_threshold(
        self, threshold: float, state: State | None = None
    ) -> State | None:
        """Change the threshold; a state with results is answered again."""
        self.confidence_threshold = _threshold(threshold)
        if state is not None and "boxes" in state:
            return self._forward_grounding(state)
        return state

    # ------------------------------------------------ the interactive head
    def predict_inst(
        self,
        state: State,
        point_coords: Any = None,
        point_labels: Any = None,
        box: Any = None,
        mask_input: Any = None,
        multimask_output: bool = True,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """SAM 2-style prediction for one object: points (N x 2, image pixels) with labels
        (1 foreground, 0 background) and/or a box (x0, y0, x1, y1 pixels).

        Returns:
            masks C x H x W bool, scores C (predicted IoU), low-res logits C x 4h x 4w.
        """
        _need_image(state)
        h, w = state["original_height"], state["original_width"]
        scale = torch.tensor([self.resolution / w, self.resolution / h], device=self.device)
        points = labels = boxes = masks = None
        if point_coords is not None:
            points = torch.as_tensor(np.asarray(point_coords, np.float32), device=self.device)
            points = points.reshape(1, -1, 2) * scale
            if point_labels is None:
                raise PromptError("point_labels are needed with point_coords")
            labels = torch.as_tensor(np.asarray(point_labels), device=self.device).reshape(1, -1)
        if box is not None:
            boxes = torch.as_tensor(np.asarray(box, np.float32), device=self.device).reshape(1, 4)
            boxes = boxes * scale.repeat(2)
        if mask_input is not None:
            masks = torch.as_tensor(np.asarray(mask_input, np.float32), device=self.device)
            masks = masks.reshape(1, 1, *masks.shape[-2:])
        if points is None and boxes is None and masks is None:
            raise PromptError("give point_coords, a box or a mask_input")
        prompts = PromptBatch(points=points, labels=labels, boxes=boxes, masks=masks)
        decoded = self.model.decode(state["embedding"], prompts, multimask=multimask_output)
        full = self.model.postprocess_masks(decoded.low_res_logits, (0, 0), (h, w))[0]
        return (
            (full > 0).cpu().numpy(),
            decoded.iou_scores[0].float().cpu().numpy(),
            decoded.low_res_logits[0].float().cpu().numpy(),
        )

    # ------------------------------------------------ detection
    def _forward_grounding(self, state: State) -> State:
        text = state.get("text_prompt")
        geometric = state.get("geometric_prompt") or []
        exemplars = labels = None
        if geometric:
            cxcywh = torch.tensor([b for b, _ in geometric], dtype=torch.float32)
            cx, cy, bw, bh = cxcywh.unbind(-1)
            xyxy = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], -1)
            exemplars = (xyxy * self.resolution)[None].to(self.device)
            labels = torch.tensor([[int(lab) for _, lab in geometric]], device=self.device)
        if text is None and exemplars is None:
            raise PromptError("no prompt: set a text prompt or add a box first")
        prompts = PromptBatch(
            text=None if text is None else (text,), exemplar_boxes=exemplars, exemplar_labels=labels
        )
        found = self.model.detect(state["embedding"], prompts, self.confidence_threshold)
        h, w = state["original_height"], state["original_width"]
        keep = found.keep[0]
        scale = torch.tensor([w, h, w, h], dtype=torch.float32, device=found.boxes.device)
        probs = upscale(found.masks[0].float(), (h, w)).sigmoid()[:, None]
        state["masks_logits"] = probs
        state["masks"] = probs > 0.5
        state["boxes"] = found.boxes[0, keep].float() * scale
        state["scores"] = found.scores[0, keep].float()
        return state


def _threshold(value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"confidence_threshold must be in [0, 1], got {value}")
    return value


def _need_image(state: State) -> None:
    if not isinstance(state, dict) or "embedding" not in state:
        raise PromptError("no image: call set_image first and pass the state it returns")


def _name(model: torch.nn.Module) -> str:
    return str(getattr(model, "name", "sam3"))


def _as_chw_uint8(image: Any) -> torch.Tensor:
    """PIL image / H x W x 3 array / 3 x H x W tensor -> 3 x H x W uint8 tensor."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        Image = None  # type: ignore[assignment]
    if Image is not None and isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise ImageError(f"an image array must be H x W x 3, got {image.shape}")
        if image.dtype != np.uint8:
            raise ImageError(f"an image array must be uint8, got {image.dtype}")
        return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
    if isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] != 3:
            raise ImageError(f"an image tensor must be 3 x H x W, got {tuple(image.shape)}")
        if image.dtype != torch.uint8:
            image = (image.float().clamp(0, 1) * 255).round().to(torch.uint8)
        return image
    raise ImageError(f"an image must be a PIL image, a numpy array or a tensor, got {type(image)}")
