"""The reference side of the SAM 3 tests: transformers' ``Sam3Model`` (the detector) and
``Sam3TrackerModel`` (the interactive head) in a tiny configuration matching tijeras'
``SAM3_TEST_TINY``, with seeded, perturbed random weights, saved in the layout of the
``facebook/sam3`` file (``detector_model.*``, ``tracker_model.*``, ``tracker_neck.*``).

The tracker's own vision encoder is given the detector's backbone weights, as in SAM 3, where
both heads read the same ViT map; its neck is the tracker neck.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

IMAGE_SIZE = 224
PHOTOS = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "sam_demo_images"
VIT = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "image_size": IMAGE_SIZE,
    "patch_size": 14,
    "window_size": 8,
    "global_attn_indexes": [1, 3],
    "pretrain_image_size": 112,
    "layer_norm_eps": 1e-5,  # Meta's ViT (transformers' class default is 1e-6)
    "rope_parameters": {"rope_type": "axial", "rope_theta": 10000.0},
}


def configs():
    """transformers configs of the tiny detector and tracker."""
    from transformers import Sam3Config
    from transformers.models.sam3_tracker import Sam3TrackerConfig

    vision = {
        "backbone_config": dict(model_type="sam3_vit_model", **VIT),
        "fpn_hidden_size": 32,
        "backbone_feature_sizes": [[64, 64], [32, 32], [16, 16]],
    }
    detector = Sam3Config(
        vision_config=vision,
        text_config={
            "model_type": "clip_text_model",
            "vocab_size": 49408,
            "hidden_size": 64,
            "intermediate_size": 128,
            "projection_dim": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 32,
            "hidden_act": "gelu",
        },
        geometry_encoder_config={
            "hidden_size": 32,
            "num_layers": 2,
            "num_attention_heads": 4,
            "intermediate_size": 64,
        },
        detr_encoder_config={
            "hidden_size": 32,
            "num_layers": 2,
            "num_attention_heads": 4,
            "intermediate_size": 64,
        },
        detr_decoder_config={
            "hidden_size": 32,
            "num_layers": 2,
            "num_queries": 16,
            "num_attention_heads": 4,
            "intermediate_size": 64,
        },
        mask_decoder_config={"hidden_size": 32, "num_attention_heads": 4},
    )
    tracker = Sam3TrackerConfig(
        vision_config=vision,
        prompt_encoder_config={"hidden_size": 32, "image_size": IMAGE_SIZE, "patch_size": 14},
        mask_decoder_config={
            "hidden_size": 32,
            "mlp_dim": 64,
            "num_attention_heads": 4,
            "iou_head_hidden_dim": 32,
        },
    )
    return detector, tracker


def reference_models(seed: int = 0):
    """(detector, tracker) in eval mode with every parameter perturbed by seeded noise."""
    from transformers import Sam3Model
    from transformers.models.sam3_tracker import Sam3TrackerModel

    torch.manual_seed(seed)
    detector_config, tracker_config = configs()
    detector = Sam3Model(detector_config).eval()
    tracker = Sam3TrackerModel(tracker_config).eval()
    with torch.no_grad():
        for p in [*detector.parameters(), *tracker.parameters()]:
            p.add_(torch.randn_like(p) * 0.1)
        tracker.vision_encoder.backbone.load_state_dict(
            detector.vision_encoder.backbone.state_dict()
        )
        tied = tracker.prompt_encoder.shared_embedding.positional_embedding
        tracker.shared_image_embedding.positional_embedding.copy_(tied)
    return detector, tracker


def hf_state_dict(detector, tracker) -> dict[str, torch.Tensor]:
    """The two models in the layout of the ``facebook/sam3`` file."""
    out = {"detector_model." + k: v for k, v in detector.state_dict().items()}
    for k, v in tracker.state_dict().items():
        if k.startswith("vision_encoder.neck."):
            out["tracker_neck." + k[len("vision_encoder.neck.") :]] = v
        elif not k.startswith("vision_encoder."):
            out["tracker_model." + k] = v
    return out


def tracker_embeddings(tracker, pixel_values: torch.Tensor) -> list[torch.Tensor]:
    """The tracker's image embeddings as SAM 3 prepares them for clicks: the three finest neck
    levels (the two finer ones projected by ``conv_s0``/``conv_s1``), ``no_memory_embedding``
    added to the stride-14 level.

    (``Sam3TrackerModel.forward`` with ``pixel_values`` adds that embedding to the fourth,
    coarsest level of SAM 3's neck, which it then drops: a mismatch with Meta's
    ``predict_inst``, which adds it to the stride-14 map; so the tests pass the embeddings.)
    """
    maps = tracker.get_image_features(pixel_values, return_dict=True).fpn_hidden_states[:3]
    grid = IMAGE_SIZE // 14
    sizes = [(4 * grid, 4 * grid), (2 * grid, 2 * grid), (grid, grid)]
    levels = [m.permute(1, 2, 0).reshape(1, -1, *s) for m, s in zip(maps, sizes)]
    levels[-1] = levels[-1] + tracker.no_memory_embedding.reshape(1, -1, 1, 1)
    return levels


def photo(name: str) -> np.ndarray:
    """A demo photo resized to the tiny model's input (224 x 224 x 3 uint8)."""
    import pytest
    from PIL import Image

    path = PHOTOS / "images" / name
    if not path.exists():
        pytest.skip(f"demo photos not found at {path.parent} (expected ../shared/data)")
    image = Image.open(path).convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
    return np.array(image)


def pixels(image: np.ndarray, model) -> torch.Tensor:
    """224 x 224 x 3 uint8 -> the normalised 1 x 3 x 224 x 224 input both models take."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
    return model.preprocess(x)
