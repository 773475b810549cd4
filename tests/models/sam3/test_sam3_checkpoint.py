"""SAM 3 checkpoint layouts: Meta's ``sam3.pt`` and Hugging Face's ``facebook/sam3`` file.

Full size, on the ``meta`` device (no memory, no weights): after the remap, the parameter names
and shapes of both layouts are exactly the model's. Meta's layout is read from
``meta_sam3_keys.json.gz``: the names and shapes of the state dict of Meta's
``build_sam3_image_model(enable_inst_interactivity=True)`` (package ``sam3`` 0.1.4), written
with the prefixes Meta's loader strips from ``sam3.pt`` (``detector.`` for the image model,
``tracker.`` for its ``inst_interactive_predictor.model``). Hugging Face's layout comes from
transformers' ``Sam3VideoModel``, whose state dict is the ``facebook/sam3`` file's.
Tiny size: files of either format load strictly; a wrong file gets one error naming it.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import torch

from tijeras.errors import CheckpointError
from tijeras.models.sam3.checkpoint import drop_class_position, load_checkpoint, remap
from tijeras.models.sam3.config import SAM3, SAM3_TEST_TINY
from tijeras.models.sam3.model import Sam3Model

HERE = Path(__file__).resolve().parent


def model_shapes(config) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        model = Sam3Model(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def full_size() -> dict[str, tuple[int, ...]]:
    return model_shapes(SAM3)


def meta_tensors(shapes: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    return {k: torch.empty(v, device="meta") for k, v in shapes.items()}


def test_meta_layout_full_size(full_size):
    with gzip.open(HERE / "meta_sam3_keys.json.gz", "rt") as f:
        shapes = json.load(f)
    remapped = {k: tuple(v.shape) for k, v in remap(meta_tensors(shapes)).items()}
    assert sorted(set(full_size) - set(remapped)) == []
    assert sorted(set(remapped) - set(full_size)) == []
    assert {k: v for k, v in remapped.items() if full_size[k] != v} == {}
    assert sum(torch.Size(v).numel() for v in full_size.values()) > 800e6


@pytest.mark.parity
def test_hf_layout_full_size(full_size):
    transformers = pytest.importorskip("transformers", reason="needs transformers (test-only)")
    from transformers.models.sam3_video import Sam3VideoConfig

    with torch.device("meta"):
        video = transformers.Sam3VideoModel(Sam3VideoConfig())
    remapped = {k: tuple(v.shape) for k, v in remap(video.state_dict()).items()}
    assert sorted(set(full_size) - set(remapped)) == []
    assert sorted(set(remapped) - set(full_size)) == []
    assert {k: v for k, v in remapped.items() if full_size[k] != v} == {}


def test_class_position_dropped():
    pos = torch.arange(5 * 3.0).view(1, 5, 3)
    assert torch.equal(drop_class_position(pos), pos[:, 1:])
    assert torch.equal(drop_class_position(pos[:, 1:]), pos[:, 1:])


@pytest.fixture(scope="module")
def tiny_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {k: torch.randn_like(v) for k, v in Sam3Model(SAM3_TEST_TINY).state_dict().items()}


def to_meta_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tiny model's weights as ``sam3.pt`` stores them (class position, RoPE tables,
    unused and video-only entries included)."""
    out = {}
    for k, v in state.items():
        if k.startswith("tracker."):
            out[k] = v
        elif k == "backbone.vision_backbone.trunk.pos_embed":
            out["detector." + k] = torch.cat([torch.zeros_like(v[:, :1]), v], 1)
        else:
            out["detector." + k] = v
    out["detector.backbone.vision_backbone.trunk.blocks.0.attn.freqs_cis"] = torch.zeros(64, 8)
    out["detector.backbone.language_backbone.encoder.text_projection"] = torch.zeros(64, 32)
    out["detector.geometry_encoder.points_direct_project.weight"] = torch.zeros(32, 2)
    out["tracker.maskmem_backbone.out_proj.weight"] = torch.zeros(64, 32, 1, 1)
    out["tracker.transformer.encoder.norm.weight"] = torch.zeros(32)
    return out


def test_meta_file_loads_strictly(tmp_path, tiny_state):
    path = tmp_path / "sam3.pt"
    torch.save({"model": to_meta_layout(tiny_state)}, path)
    model = Sam3Model(SAM3_TEST_TINY)
    load_checkpoint(model, path, "sam3-test-tiny")
    for k, v in model.state_dict().items():
        assert torch.equal(v, tiny_state[k]), k


@pytest.mark.parity
def test_hf_file_loads_strictly(tmp_path):
    pytest.importorskip("transformers", reason="needs transformers (test-only)")
    from models.sam3.sam3_reference import hf_state_dict, reference_models
    from safetensors.torch import save_file

    detector, tracker = reference_models()
    state = {k: v.contiguous() for k, v in hf_state_dict(detector, tracker).items()}
    path = tmp_path / "model.safetensors"
    save_file(state, str(path))
    model = Sam3Model(SAM3_TEST_TINY)
    load_checkpoint(model, path, "sam3-test-tiny")
    embed = model.backbone.vision_backbone.trunk.pos_embed
    assert torch.equal(
        embed, state["detector_model.vision_encoder.backbone.embeddings.position_embeddings"]
    )


def test_wrong_files_are_named(tmp_path, tiny_state):
    sam2 = tmp_path / "sam2.1_hiera_tiny.pt"
    torch.save({"model": {"image_encoder.trunk.patch_embed.proj.weight": torch.zeros(1)}}, sam2)
    with pytest.raises(CheckpointError, match=r"sam2\.1_hiera_tiny\.pt is not a SAM 3 .*SAM 2"):
        load_checkpoint(Sam3Model(SAM3_TEST_TINY), sam2)
    partial = dict(tiny_state)
    del partial["tracker.no_mem_embed"]
    path = tmp_path / "partial.pt"
    torch.save(partial, path)
    with pytest.raises(CheckpointError, match=r"partial\.pt.*missing keys: tracker\.no_mem_embed"):
        load_checkpoint(Sam3Model(SAM3_TEST_TINY), path)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(Sam3Model(SAM3_TEST_TINY), tmp_path / "absent.pt")
