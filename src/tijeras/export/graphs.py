"""The two graphs a SAM-style model is exported as: the image encoder and the prompt decoder.

Both are small ``nn.Module`` wrappers around a loaded model, written so that
``torch.onnx.export`` can trace them with dynamic sizes:

- :class:`EncoderGraph`: the resized image (1 x 3 x h x w, values 0-255, longest side S for
  SAM, S x S for SAM 2) -> the embedding and the family's extra per-image tensors (SAM 2's
  projected high-resolution levels), through the model contract (``preprocess``,
  ``encode_image``).
- :class:`DecoderGraph`: the embedding, B prompts of N points each, an optional mask prompt ->
  IoU scores and low-res logits (and, as options, logits at the original image size and SAM 2's
  object scores). It runs the family's prompt encoder and its plain mask decoder, the same
  function as the predictor's fast decoder (tests hold the exported graphs to it).

Prompt conventions (those of Meta's ONNX decoder): coordinates are xy in the model's input
frame (original pixels times S / max(H, W) for SAM, times S / W and S / H for SAM 2); labels
1 foreground, 0 background, 2 and 3 the top-left and bottom-right corners of a box, -1 a
padding point. SAM's graph embeds exactly the points given, so a prompt without a box gets a
padding point ((0, 0), label -1) appended by the caller, as SAM's predictor does; SAM 2's graph
appends it itself, as SAM 2's predictor always does. ``mask_input`` (B x 1 x 4h x 4w logits of
an earlier prediction) is used where ``has_mask_input`` is 1.

Shapes: B prompts, N points per prompt, C candidates, H x W original pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..contract import SegmentationModel
from ..models.blocks.prompt_encoder import PromptEncoder
from ..models.blocks.sam2_decoder import Sam2MaskDecoder


class EncoderGraph(nn.Module):
    """1 x 3 x h x w resized image (float, 0-255) -> embedding, extras (float32)."""

    def __init__(self, model: SegmentationModel, extra_names: Sequence[str]) -> None:
        super().__init__()
        self.model = model
        self.extra_names = tuple(extra_names)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.model.preprocess(image).to(self.model.encoder_dtype)
        features, extra = self.model.encode_image(x)
        return (features.float(), *(extra[name].float() for name in self.extra_names))


def prompt_parts(model: nn.Module) -> tuple[PromptEncoder, nn.Module]:
    """The prompt encoder and mask decoder of a SAM-style model (``prompt_modules``)."""
    parts = getattr(model, "prompt_modules", None)
    if parts is None:
        from ..errors import TijerasError

        raise TijerasError(
            f"{type(model).__name__} has no SAM-style prompt decoder to export "
            "(export supports SAM, MobileSAM and SAM 2)"
        )
    encoder, decoder = parts()
    return encoder, decoder


def pads_itself(model: nn.Module) -> bool:
    """True where the family's predictor appends a padding point to every prompt (SAM 2)."""
    return isinstance(prompt_parts(model)[1], Sam2MaskDecoder)


class DecoderGraph(nn.Module):
    """Prompts against one embedding -> IoU scores, low-res logits (and options).

    Inputs, in order: ``image_embeddings`` (1 x C x h x w), the encoder's extras (SAM 2:
    ``high_res_0``, ``high_res_1``), ``point_coords`` (B x N x 2), ``point_labels`` (B x N),
    ``mask_input`` (B x 1 x 4h x 4w), ``has_mask_input`` (B), and with ``original_size``
    ``orig_im_size`` (2: H, W). Outputs: ``iou_predictions`` (B x C), ``low_res_masks``
    (B x C x 4h x 4w), with ``original_size`` ``masks`` (B x C x H x W logits), and for SAM 2
    ``object_scores`` (B x 1).
    """

    def __init__(
        self,
        model: nn.Module,
        extra_names: Sequence[str],
        *,
        multimask: bool = True,
        original_size: bool = False,
    ) -> None:
        super().__init__()
        self.model = model
        self.prompt_encoder, self.mask_decoder = prompt_parts(model)
        self.extra_names = tuple(extra_names)
        self.multimask = multimask
        self.original_size = original_size
        self.sam2 = isinstance(self.mask_decoder, Sam2MaskDecoder)
        self.image_size = int(model.input_spec.image_size)
        self.square = model.input_spec.resize == "square"

    def forward(self, image_embeddings: torch.Tensor, *inputs: torch.Tensor) -> tuple:
        n_extra = len(self.extra_names)
        extras = dict(zip(self.extra_names, inputs[:n_extra]))
        coords, labels, mask_input, has_mask = inputs[n_extra : n_extra + 4]
        dtype = self.mask_decoder.iou_token.weight.dtype
        enc = self.prompt_encoder
        sparse = enc.embed_points(coords, labels, pad=self.sam2).to(dtype)
        has = has_mask.to(dtype).reshape(-1, 1, 1, 1)
        no_mask = enc.no_mask_embed.weight.reshape(1, -1, 1, 1)
        dense = enc.embed_masks(mask_input.to(dtype)) * has + no_mask * (1 - has)
        features = image_embeddings.to(dtype)
        args = {
            "image_embeddings": features,
            "image_pe": enc.get_dense_pe(),
            "sparse_prompt_embeddings": sparse,
            "dense_prompt_embeddings": dense,
            "multimask_output": self.multimask,
        }
        if self.sam2:
            high_res = None
            if self.mask_decoder.config.use_high_res_features:
                high_res = (extras["high_res_0"].to(dtype), extras["high_res_1"].to(dtype))
            low_res, iou, objects = self.mask_decoder(**args, high_res_features=high_res)
        else:
            low_res, iou = self.mask_decoder(**args)
            objects = None
        outputs = [iou.float(), low_res.float()]
        if self.original_size:
            outputs.append(self.to_original_size(low_res.float(), inputs[n_extra + 4]))
        if objects is not None:
            outputs.append(objects.float())
        return tuple(outputs)

    def to_original_size(self, low_res: torch.Tensor, orig_im_size: torch.Tensor) -> torch.Tensor:
        """B x C x 4h x 4w logits -> B x C x H x W, as the family's ``postprocess_masks``."""
        h, w = orig_im_size[0], orig_im_size[1]
        if self.square:
            return F.interpolate(low_res, size=(h, w), mode="bilinear", align_corners=False)
        s = self.image_size
        up = F.interpolate(low_res, size=(s, s), mode="bilinear", align_corners=False)
        # int(h * s / longest + 0.5) in integer arithmetic (the resize rule of the engine)
        longest = torch.maximum(h, w)
        kept_h = torch.div(2 * h * s + longest, 2 * longest, rounding_mode="floor")
        kept_w = torch.div(2 * w * s + longest, 2 * longest, rounding_mode="floor")
        cropped = up[..., :kept_h, :kept_w]
        return F.interpolate(cropped, size=(h, w), mode="bilinear", align_corners=False)
