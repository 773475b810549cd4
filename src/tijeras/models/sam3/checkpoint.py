"""SAM 3 checkpoints: Meta's ``sam3.pt`` and the Hugging Face ``model.safetensors``, each with
its own key remap onto :class:`~tijeras.models.sam3.model.Sam3Model`, and a strict load.

**Meta's layout** (``sam3.pt``: ``detector.*`` and ``tracker.*``). The detector's keys are the
model's with ``detector.`` in front. Adjusted: the ViT's ``pos_embed`` carries a leading class
token position, dropped (the model never uses it); derived or unused entries are dropped: the
RoPE tables ``attn.freqs_cis`` (recomputed), CLIP's ``text_projection`` (SAM 3 uses every token,
not CLIP's pooled projection) and the exemplar encoder's point projections ``points_*`` (points
are prompts of the interactive head here). Of ``tracker.*`` the image model keeps the prompt
encoder, the mask decoder and ``no_mem_embed``; the video modules (memory encoder and attention,
object pointers, temporal encodings) are dropped by name.

**Hugging Face's layout** (``Sam3Model`` or the ``Sam3VideoModel`` file of ``facebook/sam3``:
``detector_model.*``, ``tracker_model.*``, ``tracker_neck.*``): renamed module by module, with
the separate query/key/value projections stacked into one ``in_proj``/``qkv`` (the order
q, k, v), and the SAM 2 decoder's names translated (``proj_in``/``layers``/``proj_out`` ->
``layers.0..n``, ``upscale_conv1`` -> ``output_upscaling.0``...).

Anything not named here stays in the state dict, so the strict load reports it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from ...errors import CheckpointError
from ._hub import load_state_dict_file, load_state_dict_into

StateDict = dict[str, torch.Tensor]

TRACKER_IMAGE = ("sam_prompt_encoder.", "sam_mask_decoder.", "no_mem_embed")
META_DROPPED = re.compile(
    r"(^backbone\.vision_backbone\.trunk\.blocks\.\d+\.attn\.freqs_cis$)"
    r"|(^backbone\.language_backbone\.encoder\.text_projection$)"
    r"|(^geometry_encoder\.points_(direct|pool|pos_enc)_project\.)"
)
HF_VIDEO_ONLY = (
    "memory_",
    "mask_downsample",
    "object_pointer_proj",
    "temporal_positional_encoding_projection_layer",
    "no_memory_positional_encoding",
    "no_object_pointer",
    "occlusion_spatial_embedding_parameter",
    "shared_image_embedding.",  # tied to the prompt encoder's
)

# Hugging Face -> tijeras, applied in order to each detector key (after the q/k/v stacking).
_HF_DETECTOR: list[tuple[str, str]] = [
    (
        r"^vision_encoder\.backbone\.embeddings\.patch_embeddings\.projection\.",
        "backbone.vision_backbone.trunk.patch_embed.proj.",
    ),
    (
        r"^vision_encoder\.backbone\.embeddings\.position_embeddings$",
        "backbone.vision_backbone.trunk.pos_embed",
    ),
    (r"^vision_encoder\.backbone\.layer_norm\.", "backbone.vision_backbone.trunk.ln_pre."),
    (
        r"^vision_encoder\.backbone\.layers\.(\d+)\.layer_norm(\d)\.",
        r"backbone.vision_backbone.trunk.blocks.\1.norm\2.",
    ),
    (
        r"^vision_encoder\.backbone\.layers\.(\d+)\.attention\.in_proj\.",
        r"backbone.vision_backbone.trunk.blocks.\1.attn.qkv.",
    ),
    (
        r"^vision_encoder\.backbone\.layers\.(\d+)\.attention\.o_proj\.",
        r"backbone.vision_backbone.trunk.blocks.\1.attn.proj.",
    ),
    (
        r"^vision_encoder\.backbone\.layers\.(\d+)\.mlp\.",
        r"backbone.vision_backbone.trunk.blocks.\1.mlp.",
    ),
    (r"^vision_encoder\.neck\.fpn_layers\.", "backbone.vision_backbone.convs."),
    (
        r"^text_encoder\.text_model\.embeddings\.token_embedding\.",
        "backbone.language_backbone.encoder.token_embedding.",
    ),
    (
        r"^text_encoder\.text_model\.embeddings\.position_embedding\.weight$",
        "backbone.language_backbone.encoder.positional_embedding",
    ),
    (
        r"^text_encoder\.text_model\.final_layer_norm\.",
        "backbone.language_backbone.encoder.ln_final.",
    ),
    (
        r"^text_encoder\.text_model\.encoder\.layers\.(\d+)\.self_attn\.in_proj\.(weight|bias)$",
        r"backbone.language_backbone.encoder.transformer.resblocks.\1.attn.in_proj_\2",
    ),
    (
        r"^text_encoder\.text_model\.encoder\.layers\.(\d+)\.self_attn\.out_proj\.",
        r"backbone.language_backbone.encoder.transformer.resblocks.\1.attn.out_proj.",
    ),
    (
        r"^text_encoder\.text_model\.encoder\.layers\.(\d+)\.layer_norm(\d)\.",
        r"backbone.language_backbone.encoder.transformer.resblocks.\1.ln_\2.",
    ),
    (
        r"^text_encoder\.text_model\.encoder\.layers\.(\d+)\.mlp\.fc1\.",
        r"backbone.language_backbone.encoder.transformer.resblocks.\1.mlp.c_fc.",
    ),
    (
        r"^text_encoder\.text_model\.encoder\.layers\.(\d+)\.mlp\.fc2\.",
        r"backbone.language_backbone.encoder.transformer.resblocks.\1.mlp.c_proj.",
    ),
    (r"^text_projection\.", "backbone.language_backbone.resizer."),
    (
        r"^geometry_encoder\.layers\.(\d+)\.cross_attn\.",
        r"geometry_encoder.encode.\1.cross_attn_image.",
    ),
    (r"^geometry_encoder\.layers\.(\d+)\.self_attn\.", r"geometry_encoder.encode.\1.self_attn."),
    (r"^geometry_encoder\.layers\.(\d+)\.mlp\.fc(\d)\.", r"geometry_encoder.encode.\1.linear\2."),
    (r"^geometry_encoder\.layers\.(\d+)\.layer_norm(\d)\.", r"geometry_encoder.encode.\1.norm\2."),
    (r"^geometry_encoder\.vision_layer_norm\.", "geometry_encoder.img_pre_norm."),
    (r"^geometry_encoder\.prompt_layer_norm\.", "geometry_encoder.norm."),
    (r"^geometry_encoder\.output_layer_norm\.", "geometry_encoder.encode_norm."),
    (
        r"^detr_encoder\.layers\.(\d+)\.cross_attn\.",
        r"transformer.encoder.layers.\1.cross_attn_image.",
    ),
    (r"^detr_encoder\.layers\.(\d+)\.mlp\.fc(\d)\.", r"transformer.encoder.layers.\1.linear\2."),
    (r"^detr_encoder\.layers\.(\d+)\.layer_norm(\d)\.", r"transformer.encoder.layers.\1.norm\2."),
    (r"^detr_encoder\.", "transformer.encoder."),
    (r"^detr_decoder\.layers\.(\d+)\.text_cross_attn\.", r"transformer.decoder.layers.\1.ca_text."),
    (
        r"^detr_decoder\.layers\.(\d+)\.vision_cross_attn\.",
        r"transformer.decoder.layers.\1.cross_attn.",
    ),
    (r"^detr_decoder\.layers\.(\d+)\.mlp\.fc(\d)\.", r"transformer.decoder.layers.\1.linear\2."),
    (
        r"^detr_decoder\.layers\.(\d+)\.vision_cross_attn_layer_norm\.",
        r"transformer.decoder.layers.\1.norm1.",
    ),
    (
        r"^detr_decoder\.layers\.(\d+)\.text_cross_attn_layer_norm\.",
        r"transformer.decoder.layers.\1.catext_norm.",
    ),
    (
        r"^detr_decoder\.layers\.(\d+)\.self_attn_layer_norm\.",
        r"transformer.decoder.layers.\1.norm2.",
    ),
    (r"^detr_decoder\.layers\.(\d+)\.mlp_layer_norm\.", r"transformer.decoder.layers.\1.norm3."),
    (r"^detr_decoder\.presence_head\.", "transformer.decoder.presence_token_head."),
    (r"^detr_decoder\.presence_layer_norm\.", "transformer.decoder.presence_token_out_norm."),
    (r"^detr_decoder\.output_layer_norm\.", "transformer.decoder.norm."),
    (r"^detr_decoder\.box_head\.", "transformer.decoder.bbox_embed."),
    (r"^detr_decoder\.box_rpb_embed_(x|y)\.", r"transformer.decoder.boxRPB_embed_\1."),
    (r"^detr_decoder\.", "transformer.decoder."),
    (r"^dot_product_scoring\.text_mlp\.", "dot_prod_scoring.prompt_mlp."),
    (r"^dot_product_scoring\.text_mlp_out_norm\.", "dot_prod_scoring.prompt_mlp.out_norm."),
    (r"^dot_product_scoring\.text_proj\.", "dot_prod_scoring.prompt_proj."),
    (r"^dot_product_scoring\.query_proj\.", "dot_prod_scoring.hs_proj."),
    (r"^mask_decoder\.mask_embedder\.", "segmentation_head.mask_predictor.mask_embed."),
    (r"^mask_decoder\.instance_projection\.", "segmentation_head.instance_seg_head."),
    (r"^mask_decoder\.semantic_projection\.", "segmentation_head.semantic_seg_head."),
    (r"^mask_decoder\.prompt_cross_attn_norm\.", "segmentation_head.cross_attn_norm."),
    (r"^mask_decoder\.prompt_cross_attn\.", "segmentation_head.cross_attend_prompt."),
    (r"^mask_decoder\.", "segmentation_head."),
    (r"\.o_proj\.", ".out_proj."),
]
_HF_TRACKER: list[tuple[str, str]] = [
    (
        r"^prompt_encoder\.shared_embedding\.positional_embedding$",
        "sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix",
    ),
    (r"^prompt_encoder\.mask_embed\.conv1\.", "sam_prompt_encoder.mask_downscaling.0."),
    (r"^prompt_encoder\.mask_embed\.layer_norm1\.", "sam_prompt_encoder.mask_downscaling.1."),
    (r"^prompt_encoder\.mask_embed\.conv2\.", "sam_prompt_encoder.mask_downscaling.3."),
    (r"^prompt_encoder\.mask_embed\.layer_norm2\.", "sam_prompt_encoder.mask_downscaling.4."),
    (r"^prompt_encoder\.mask_embed\.conv3\.", "sam_prompt_encoder.mask_downscaling.6."),
    (r"^prompt_encoder\.", "sam_prompt_encoder."),
    (r"\.o_proj\.", ".out_proj."),
    (r"\.layer_norm(\d)\.", r".norm\1."),
    (r"\.layer_norm_final_attn\.", ".norm_final_attn."),
    (r"\.mlp\.proj_in\.", ".mlp.lin1."),
    (r"\.mlp\.proj_out\.", ".mlp.lin2."),
    (r"^mask_decoder\.upscale_conv1\.", "sam_mask_decoder.output_upscaling.0."),
    (r"^mask_decoder\.upscale_layer_norm\.", "sam_mask_decoder.output_upscaling.1."),
    (r"^mask_decoder\.upscale_conv2\.", "sam_mask_decoder.output_upscaling.3."),
    (r"^mask_decoder\.", "sam_mask_decoder."),
    (r"^no_memory_embedding$", "no_mem_embed"),
]
_NECK = [
    (r"\.scale_layers\.2\.", ".dconv_2x2_1."),
    (r"\.proj1\.", ".conv_1x1."),
    (r"\.proj2\.", ".conv_3x3."),
]


def checkpoint_format(state_dict: Mapping[str, torch.Tensor]) -> str | None:
    """``"meta"``, ``"hf"``, ``"tijeras"`` or None (not a SAM 3 file)."""
    keys = list(state_dict)
    if any(k.startswith("detector.backbone.") for k in keys):
        return "meta"
    if any(
        k.startswith(("detector_model.vision_encoder.", "vision_encoder.backbone.")) for k in keys
    ):
        return "hf"
    if any(k.startswith("backbone.vision_backbone.trunk.") for k in keys):
        return "tijeras"
    return None


def describe(state_dict: Mapping[str, torch.Tensor]) -> str:
    """What a state dict looks like, in words (for errors about a wrong file)."""
    keys = list(state_dict)
    found = checkpoint_format(state_dict)
    if found is not None:
        return {
            "meta": "Meta's sam3.pt",
            "hf": "a Hugging Face SAM 3 file",
            "tijeras": "a SAM 3 state dict",
        }[found]
    if any(k.startswith("image_encoder.trunk.") for k in keys):
        return "a SAM 2 checkpoint (image_encoder.trunk.*)"
    if any(k.startswith("image_encoder.layers.") for k in keys):
        return "a MobileSAM checkpoint (TinyViT image_encoder.layers.*)"
    if any(k.startswith("image_encoder.") for k in keys):
        return "a SAM (ViT) checkpoint (image_encoder.*)"
    return (
        f"no SAM 3 file (its keys start {', '.join(sorted({k.split('.')[0] for k in keys})[:5])})"
    )


def remap(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    """Meta's or Hugging Face's SAM 3 state dict -> :class:`Sam3Model`'s keys."""
    found = checkpoint_format(state_dict)
    if found == "meta":
        return remap_meta(state_dict)
    if found == "hf":
        return remap_hf(state_dict)
    if found == "tijeras":
        return dict(state_dict)
    raise CheckpointError(f"not a SAM 3 checkpoint: it looks like {describe(state_dict)}")


def remap_meta(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    """Meta's ``sam3.pt`` layout (see the module docstring)."""
    out: StateDict = {}
    for key, value in state_dict.items():
        if key.startswith("detector."):
            key = key[len("detector.") :]
            if META_DROPPED.search(key):
                continue
            if key == "backbone.vision_backbone.trunk.pos_embed":
                value = drop_class_position(value)
        elif key.startswith("tracker.") and not key[len("tracker.") :].startswith(TRACKER_IMAGE):
            continue  # a video module
        out[key] = value
    return out


def drop_class_position(pos: torch.Tensor) -> torch.Tensor:
    """1 x (1 + P*P) x C (class token first) -> 1 x P*P x C; unchanged if P*P already."""
    n = pos.shape[1]
    side = round((n - 1) ** 0.5)
    return pos[:, 1:] if side * side == n - 1 else pos


def remap_hf(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    """Hugging Face's layout (``Sam3Model`` alone, or the video model with the tracker)."""
    out: StateDict = {}
    detector = {
        k.removeprefix("detector_model."): v
        for k, v in state_dict.items()
        if not k.startswith(("tracker_model.", "tracker_neck."))
    }
    for key, value in _stack_qkv(detector).items():
        if key == "text_encoder.text_projection.weight":
            continue
        key = re.sub(r"\.layer(\d)\.", lambda m: f".layers.{int(m.group(1)) - 1}.", key)
        out[_rename(key, _HF_DETECTOR)] = value
    tracker = {
        k[len("tracker_model.") :]: v
        for k, v in state_dict.items()
        if k.startswith("tracker_model.")
    }
    for key, value in tracker.items():
        if key.startswith(HF_VIDEO_ONLY) or key.startswith("vision_encoder."):
            continue
        if key == "prompt_encoder.point_embed.weight":
            for i, row in enumerate(value):
                out[f"tracker.sam_prompt_encoder.point_embeddings.{i}.weight"] = row[None].clone()
            continue
        out["tracker." + _rename(_mlp_layers(key), _HF_TRACKER)] = value
    for key, value in state_dict.items():
        if key.startswith("tracker_neck.fpn_layers."):
            rest = key[len("tracker_neck.fpn_layers.") :]
            out["backbone.vision_backbone.sam2_convs." + rest] = value
    return _neck_names(out)


def _rename(key: str, table: list[tuple[str, str]]) -> str:
    for pattern, replacement in table:
        key = re.sub(pattern, replacement, key)
    return key


def _mlp_layers(key: str) -> str:
    """``<head>.proj_in`` / ``<head>.layers.i`` / ``<head>.proj_out`` -> ``<head>.layers.k``
    for the SAM 2 decoder's 3-layer heads (the two-way blocks' 2-layer MLPs stay lin1/lin2)."""
    m = re.match(
        r"^(mask_decoder\.(?:output_hypernetworks_mlps\.\d+|iou_prediction_head|"
        r"pred_obj_score_head))\.(proj_in|layers\.(\d+)|proj_out)\.(.+)$",
        key,
    )
    if not m:
        return key
    head, part, index, rest = m.groups()
    k = 0 if part == "proj_in" else (int(index) + 1 if index is not None else 2)
    return f"{head}.layers.{k}.{rest}"


def _neck_names(state_dict: StateDict) -> StateDict:
    """HF's ``scale_layers``/``proj1``/``proj2`` -> Meta's ``dconv_*``/``conv_1x1``/``conv_3x3``.

    ``scale_layers.0`` is ``dconv_2x2_0`` on a x4 level (which also has ``scale_layers.2``) and
    ``dconv_2x2`` on a x2 level."""
    out: StateDict = {}
    pattern = re.compile(r"^(backbone\.vision_backbone\.(?:sam2_)?convs\.\d+)\.(.+)$")
    fourfold = {
        m.group(1) for k in state_dict if (m := pattern.match(k)) and ".scale_layers.2." in k
    }
    for key, value in state_dict.items():
        m = pattern.match(key)
        if m:
            level, rest = m.groups()
            rest = _rename("." + rest, _NECK)[1:]
            if rest.startswith("scale_layers.0."):
                name = "dconv_2x2_0." if level in fourfold else "dconv_2x2."
                rest = name + rest[len("scale_layers.0.") :]
            key = f"{level}.{rest}"
        out[key] = value
    return out


def _stack_qkv(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    """Separate ``q_proj``/``k_proj``/``v_proj`` -> one ``in_proj`` (q, k, v stacked)."""
    out: StateDict = {}
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state_dict.items():
        m = re.match(r"^(.+)\.([qkv])_proj\.(weight|bias)$", key)
        if m:
            groups.setdefault(f"{m.group(1)}|{m.group(3)}", {})[m.group(2)] = value
        else:
            out[key] = value
    for name, parts in groups.items():
        base, kind = name.split("|")
        if set(parts) != {"q", "k", "v"}:
            raise CheckpointError(f"{base}: incomplete query/key/value projections {sorted(parts)}")
        out[f"{base}.in_proj.{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return {_in_proj_name(k): v for k, v in out.items()}


def _in_proj_name(key: str) -> str:
    """``<attn>.in_proj.weight`` -> ``<attn>.in_proj_weight``, except for the ViT's and the text
    encoder's stacked projections, whose own rename rules follow."""
    if ".attention.in_proj." in key or ("text_model" in key and ".self_attn.in_proj." in key):
        return key
    return re.sub(r"\.in_proj\.(weight|bias)$", r".in_proj_\1", key)


def load_checkpoint(
    model: torch.nn.Module,
    path: str | Path,
    name: str = "sam3",
    describe_other: Callable[[Mapping[str, torch.Tensor]], str] | None = None,
) -> None:
    """Load ``path`` (either layout) strictly into ``model``, or raise one clear
    :class:`CheckpointError` naming the file and what it looks like."""
    state_dict = load_state_dict_file(path)
    if checkpoint_format(state_dict) is None:
        looks = (describe_other or describe)(state_dict)
        raise CheckpointError(f"{path} is not a SAM 3 checkpoint: it looks like {looks}")
    load_state_dict_into(model, remap(state_dict), name, path)
