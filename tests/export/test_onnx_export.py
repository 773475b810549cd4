"""ONNX export of the encoder and decoder graphs of SAM, MobileSAM and SAM 2, run under ONNX
Runtime and held to the model's PyTorch path (the predictor's) within the parity tolerances:
values within 1e-4 of the largest magnitude, masks equal but within 1e-4 of the threshold.

Tiny random-weight models keep each export to a few seconds; the graphs are the same code
paths as for the full models.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.parity import LOGIT_BAND, REL_TOL, assert_close
from typer.testing import CliRunner

import tijeras
from tijeras.types import ImageEmbedding, PromptBatch

ort = pytest.importorskip("onnxruntime", reason="export tests need onnxruntime")
pytest.importorskip("onnxscript", reason="export tests need onnxscript")

from tijeras.export import export_onnx
from tijeras.export.graphs import pads_itself


def tiny_sam2() -> torch.nn.Module:
    """A SAM 2.1 model at toy sizes, with the structure of the real ones."""
    from tijeras.models.blocks.sam2_config import Sam2DecoderConfig
    from tijeras.models.sam2.config import HieraConfig, MemoryConfig, NeckConfig, Sam2Config
    from tijeras.models.sam2.model import Sam2Model

    config = Sam2Config(
        version="2.1",
        trunk=HieraConfig(embed_dim=8, num_heads=1, stages=(1, 1, 2, 1), global_att_blocks=(3,)),
        neck=NeckConfig(d_model=32),
        decoder=Sam2DecoderConfig(transformer_mlp_dim=64, iou_head_hidden_dim=32, mask_in_chans=8),
        memory=MemoryConfig(mem_dim=16, attention_layers=1, attention_ffn_dim=32, fuser_layers=1),
    )
    torch.manual_seed(0)
    model = Sam2Model(config).eval()
    with torch.no_grad():  # random, non-zero everywhere (positions, biases, extra tokens)
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model


def session(path: Path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def check_decoder_at(model, decoder: Path, embedding: ImageEmbedding, b: int, n: int) -> None:
    """The decoder graph at another prompt count and point count than it was traced with."""
    gen = torch.Generator().manual_seed(b * 10 + n)
    h, w = embedding.input_size
    coords = torch.rand(b, n, 2, generator=gen) * torch.tensor([w - 1.0, h - 1.0])
    labels = (torch.rand(b, n, generator=gen) > 0.3).long()
    with torch.inference_mode():
        ref = model.decode(
            model.prepare(embedding), PromptBatch(points=coords, labels=labels), multimask=True
        )
    graph_coords, graph_labels = coords, labels
    if not pads_itself(model):  # SAM: the caller appends the padding point
        graph_coords = torch.cat([coords, torch.zeros(b, 1, 2)], dim=1)
        graph_labels = torch.cat([labels, torch.full((b, 1), -1)], dim=1)
    feeds = {
        "image_embeddings": embedding.features.numpy(),
        "point_coords": graph_coords.float().numpy(),
        "point_labels": graph_labels.float().numpy(),
        "mask_input": np.zeros((b, 1, 256, 256), np.float32),
        "has_mask_input": np.zeros(b, np.float32),
    }
    feeds.update({k: v.numpy() for k, v in embedding.extra.items()})
    graph = session(decoder)
    if "orig_im_size" in [i.name for i in graph.get_inputs()]:
        feeds["orig_im_size"] = np.array(embedding.original_size, np.int64)
    iou, low_res = graph.run(["iou_predictions", "low_res_masks"], feeds)
    assert low_res.shape == tuple(ref.low_res_logits.shape)
    assert_close(iou, ref.iou_scores, "iou")
    assert_close(low_res, ref.low_res_logits, "low-res logits")
    ref_np = ref.low_res_logits.numpy()
    differ = (low_res > 0) != (ref_np > 0)
    assert not (differ & (np.abs(ref_np) > LOGIT_BAND)).any()


def embedding_of(model, encoder: Path, h: int, w: int) -> ImageEmbedding:
    """Run the encoder graph on an h x w resized image; check it against PyTorch."""
    image = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h)) * 255
    names = [o.name for o in session(encoder).get_outputs()]
    got = session(encoder).run(None, {"image": image.numpy()})
    with torch.inference_mode():
        features, extra = model.encode_image(model.preprocess(image))
    assert_close(got[0], features, "embedding")
    for name, value in zip(names[1:], got[1:]):
        assert_close(value, extra[name], name)
    extras = {name: torch.from_numpy(v) for name, v in zip(names[1:], got[1:])}
    return ImageEmbedding(torch.from_numpy(got[0]), (h, w), (h, w), "x", extras)


@pytest.mark.parametrize(
    "name", ["test-tiny", pytest.param("test-tiny-mobile", marks=pytest.mark.slow)]
)
def test_sam_graphs_match_pytorch(tmp_path: Path, name: str) -> None:
    torch.manual_seed(0)
    model = tijeras.load_model(name)
    graphs = export_onnx(model, tmp_path, name)  # checks the example inputs itself
    assert [g.part for g in graphs] == ["encoder", "decoder"]
    assert all(g.max_error is not None and g.max_error <= REL_TOL for g in graphs)
    # dynamic sizes: another image shape, one prompt of one point, three prompts of five
    embedding = embedding_of(model, graphs[0].path, 1024, 576)
    check_decoder_at(model, graphs[1].path, embedding, 1, 1)
    check_decoder_at(model, graphs[1].path, embedding, 3, 5)
    manifest = json.loads((tmp_path / f"{name}.onnx.json").read_text())
    assert "padding point" in manifest["padding"] and manifest["image_size"] == 1024


def test_sam2_decoder_matches_pytorch(tmp_path: Path) -> None:
    """High-res inputs, the padding point added by the graph, object scores, original size."""
    model = tiny_sam2()
    (decoder,) = export_onnx(
        model, tmp_path, "s2", parts=["decoder"], original_size=True, optimize=False
    )
    assert decoder.inputs[1:3] == ("high_res_0", "high_res_1")
    assert decoder.outputs == ("iou_predictions", "low_res_masks", "masks", "object_scores")
    assert decoder.max_error <= REL_TOL
    with torch.inference_mode():
        image = torch.rand(1, 3, 1024, 1024, generator=torch.Generator().manual_seed(1)) * 255
        features, extra = model.encode_image(model.preprocess(image))
    embedding = ImageEmbedding(features, (900, 1200), (1024, 1024), "s2", extra)
    check_decoder_at(model, decoder.path, embedding, 2, 4)


@pytest.mark.slow
def test_sam2_encoder_matches_pytorch(tmp_path: Path) -> None:
    model = tiny_sam2()
    (encoder,) = export_onnx(model, tmp_path, "s2", parts=["encoder"], optimize=False)
    assert encoder.outputs == ("image_embeddings", "high_res_0", "high_res_1")
    assert encoder.max_error <= REL_TOL
    embedding_of(model, encoder.path, 1024, 1024)


def test_export_refuses_a_bfloat16_model(tmp_path: Path) -> None:
    model = tijeras.load_model("test-tiny", dtype="bfloat16")
    with pytest.raises(tijeras.TijerasError, match="float32"):
        export_onnx(model, tmp_path, "t")


def test_cli_export_single_mask_original_size_int8(tmp_path: Path) -> None:
    from tijeras.cli.main import app

    args = ["export", "test-tiny", "--format", "onnx", "--out", str(tmp_path), "--decoder-only"]
    args += ["--single-mask", "--original-size", "--int8"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "test-tiny.encoder.onnx").exists()
    assert "checked against PyTorch" in result.output  # the float32 graph, masks included
    assert "int8: masks at IoU" in result.output
    feeds = {
        "image_embeddings": np.random.default_rng(0).normal(size=(1, 32, 64, 64)).astype("f4"),
        "point_coords": np.array([[[300.0, 200.0], [0.0, 0.0]]], np.float32),
        "point_labels": np.array([[1.0, -1.0]], np.float32),
        "mask_input": np.zeros((1, 1, 256, 256), np.float32),
        "has_mask_input": np.zeros(1, np.float32),
        "orig_im_size": np.array([480, 640], np.int64),
    }
    for name in ("test-tiny.decoder.onnx", "test-tiny.decoder.int8.onnx"):
        iou, low_res, masks = session(tmp_path / name).run(None, feeds)
        assert iou.shape == (1, 1) and low_res.shape == (1, 1, 256, 256)
        assert masks.shape == (1, 1, 480, 640)
    manifest = json.loads((tmp_path / "test-tiny.onnx.json").read_text())
    assert manifest["multimask"] is False and manifest["original_size"] is True
    bad = CliRunner().invoke(app, ["export", "test-tiny", "--format", "tflite"])
    assert bad.exit_code == 2 and "onnx" in bad.output
