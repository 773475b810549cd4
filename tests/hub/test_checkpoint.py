"""Checkpoint loading: formats, strictness and the messages a wrong file gets."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

import tijeras
from tijeras.catalog import REGISTRY
from tijeras.errors import CheckpointError
from tijeras.hub.checkpoint import load_state_dict_file


@pytest.fixture(scope="module")
def tiny_state():
    torch.manual_seed(1)
    return tijeras.build_model("test-tiny").state_dict()


def test_pth_and_safetensors_load_identically(tmp_path, tiny_state):
    torch.save(tiny_state, tmp_path / "w.pth")
    save_file({k: v.contiguous() for k, v in tiny_state.items()}, tmp_path / "w.safetensors")
    torch.save({"model": tiny_state}, tmp_path / "nested.pt")
    for name in ("w.pth", "w.safetensors", "nested.pt"):
        model = tijeras.build_model("test-tiny", tmp_path / name)
        for key, value in model.state_dict().items():
            assert torch.equal(value, tiny_state[key]), (name, key)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found: .*nope.pth"):
        tijeras.build_model("test-tiny", tmp_path / "nope.pth")


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "photo.pth"
    path.write_bytes(b"\xff\xd8\xff\xe0 a jpeg, not weights")
    with pytest.raises(CheckpointError, match="photo.pth is not a PyTorch or safetensors"):
        load_state_dict_file(path)


def test_truncated_checkpoint(tmp_path, tiny_state):
    path = tmp_path / "cut.pth"
    torch.save(tiny_state, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.pth looks truncated or corrupt"):
        load_state_dict_file(path)


def test_code_in_checkpoint_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(1), "obj": CheckpointError("x")}, path)
    with pytest.raises(CheckpointError, match="evil.pth holds Python objects"):
        load_state_dict_file(path)


def test_wrong_model_names_family_and_keys(tmp_path, tiny_state):
    path = tmp_path / "tiny.pth"
    torch.save(tiny_state, path)
    with pytest.raises(CheckpointError) as err:
        tijeras.build_model("sam-vit-b", path)
    msg = str(err.value)
    assert "does not match model sam-vit-b" in msg
    assert "missing keys" in msg and "shape mismatches" in msg
    assert "image_encoder.pos_embed (file (1, 64, 64, 32), model (1, 64, 64, 768))" in msg


def test_unexpected_and_missing_keys_are_listed(tmp_path, tiny_state):
    state = dict(tiny_state)
    state.pop("mask_decoder.iou_token.weight")
    state["extra.head.weight"] = torch.zeros(2)
    path = tmp_path / "edited.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"1 missing keys: mask_decoder.iou_token.weight"):
        tijeras.build_model("test-tiny", path)
    with pytest.raises(CheckpointError, match=r"1 unexpected keys: extra.head.weight"):
        tijeras.build_model("test-tiny", path)


def test_describe_checkpoint():
    with torch.device("meta"):
        vit_b = tijeras.build_model("sam-vit-b", device="meta").state_dict()
    assert REGISTRY.describe_checkpoint(vit_b) == "sam-vit-b (12 blocks)"
    assert "SAM 2" in REGISTRY.describe_checkpoint(
        {"image_encoder.trunk.blocks.0.attn.qkv.weight": torch.zeros(1)}
    )
    assert "MobileSAM" in REGISTRY.describe_checkpoint(
        {"image_encoder.layers.0.blocks.0.x": torch.zeros(1)}
    )
    assert (
        REGISTRY.describe_checkpoint({"fc.weight": torch.zeros(1)}) == "not a model tijeras knows"
    )


def test_load_model_without_weights_says_how_to_get_them(tmp_path):
    with pytest.raises(tijeras.TijerasError, match="tijeras download sam-vit-b"):
        tijeras.load_model("sam-vit-b", cache=tmp_path)


def test_unknown_model_lists_known_ones():
    with pytest.raises(tijeras.TijerasError, match="unknown model 'vit_z'.*sam-vit-b"):
        tijeras.build_model("vit_z")
