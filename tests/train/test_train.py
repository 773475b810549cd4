"""Fine-tuning: losses, prompt simulation, LoRA, Meta-format checkpoints, resume, learning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.shapes import make_shapes_dataset

import tijeras
from tijeras.evaluate.dataset import open_dataset
from tijeras.train import prompts
from tijeras.train.checkpoint import save_meta_checkpoint
from tijeras.train.loop import TrainConfig, Trainer, WarmupSchedule, read_log
from tijeras.train.lora import add_lora, merged_state_dict
from tijeras.train.losses import dice_loss, focal_loss, sam_loss


def _tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    return tijeras.load_model("test-tiny")


# ----------------------------------------------------------------------------- losses


def test_losses_prefer_the_right_mask_and_train_the_best_candidate() -> None:
    gt = torch.zeros(1, 16, 16, dtype=torch.bool)
    gt[0, 4:12, 4:12] = True
    valid = torch.ones_like(gt)
    good = torch.where(gt, 8.0, -8.0)[:, None]
    bad = -good
    assert focal_loss(good, gt, valid) < 1e-3 < focal_loss(bad, gt, valid)
    assert dice_loss(good, gt, valid) < 0.01 and dice_loss(bad, gt, valid) > 0.9
    logits = torch.cat([bad, good, bad], dim=1).requires_grad_(True)
    iou_pred = torch.tensor([[0.0, 1.0, 0.0]])
    loss, parts, actual = sam_loss(logits, iou_pred, gt, valid)
    assert actual.tolist() == [[0.0, 1.0, 0.0]] and parts["iou_mse"] == 0.0
    loss.backward()
    assert logits.grad[0, 0].abs().sum() == 0 and logits.grad[0, 1].abs().sum() > 0
    # Invalid pixels count nothing: a wrong prediction there costs no loss.
    wrong_rows = good.clone()
    wrong_rows[..., :2, :] = 8.0  # false positives in rows 0-1 ...
    valid2 = valid.clone()
    valid2[:, :2, :] = False  # ... which are not valid
    assert focal_loss(wrong_rows, gt, valid2) < 1e-3 and focal_loss(wrong_rows, gt, valid) > 0.1
    assert dice_loss(wrong_rows, gt, valid2) < 0.01 and dice_loss(wrong_rows, gt, valid) > 0.1


def test_corrective_points_labels_and_boxes() -> None:
    g = torch.Generator().manual_seed(0)
    gt = torch.zeros(3, 8, 8, dtype=torch.bool)
    gt[:, 2:6, 2:6] = True
    pred = gt.clone()
    pred[0, 2:6, 2:6] = False  # misses the object: a foreground click inside it
    pred[1, 0, 0] = True  # one false positive cell: a background click there
    valid = torch.ones_like(gt)
    coords, labels = prompts.corrective_points(pred, gt, valid, 4, g)
    assert labels[:, 0].tolist() == [1, 0, -1]
    x, y = coords[0, 0].tolist()
    assert 8 <= x < 24 and 8 <= y < 24
    x, y = coords[1, 0].tolist()
    assert 0 <= x < 4 and 0 <= y < 4
    boxes = torch.tensor([[100.0, 100.0, 300.0, 200.0]]).repeat(200, 1)
    noisy = prompts.noisy_boxes(boxes, torch.tensor([[320.0, 240.0]]).repeat(200, 1), g)
    assert (noisy - boxes).abs().max() <= 20.0 and noisy[:, 2].max() <= 320
    assert (noisy - boxes).std() > 3.0
    plan = prompts.schedule(8, g)
    assert len(plan) == 10 and sum(plan) == 8 and plan[-1] is False


def test_warmup_then_cosine() -> None:
    s = WarmupSchedule(total=110, warmup=10, kind="cosine")
    assert s(0) == pytest.approx(0.1) and s(9) == 1.0 and s(10) == 1.0
    assert s(60) == pytest.approx(0.5) and s(110) == pytest.approx(0.0, abs=1e-9)
    assert WarmupSchedule(100, 0, "constant")(99) == 1.0


# ----------------------------------------------------------------------------- LoRA, saving


def test_lora_merge_gives_the_same_encoder_output() -> None:
    model = _tiny()
    x = torch.randn(1, 3, 1024, 1024)
    params = add_lora(model.image_encoder, rank=4, alpha=8.0)
    with torch.no_grad():
        for p in params:
            p.normal_(0, 0.05)
        adapted = model.image_encoder(x)
    plain = _tiny()
    plain.load_state_dict(merged_state_dict(model), strict=True)
    with torch.no_grad():
        merged = plain.image_encoder(x)
        original = _tiny().image_encoder(x)
    torch.testing.assert_close(adapted, merged, atol=1e-4, rtol=1e-4)
    assert (adapted - original).abs().max() > 1e-3


def test_tiny_checkpoint_loads_back_strictly(tmp_path: Path) -> None:
    model = _tiny()
    add_lora(model.image_encoder, rank=2, alpha=2.0)
    path = save_meta_checkpoint(model, tmp_path / "tiny.pth")
    loaded = tijeras.build_model("test-tiny", checkpoint=path)
    for key, value in merged_state_dict(model).items():
        torch.testing.assert_close(loaded.state_dict()[key], value)


def test_vit_b_checkpoint_loads_in_meta_segment_anything(tmp_path: Path) -> None:
    sa = pytest.importorskip("segment_anything")
    torch.manual_seed(1)
    model = tijeras.build_model("sam-vit-b")
    add_lora(model.image_encoder, rank=2, alpha=4.0)
    with torch.no_grad():
        qkv = model.image_encoder.blocks[0].attn.qkv
        qkv.lora_b.normal_(0, 0.01)
        model.mask_decoder.iou_token.weight.add_(1.0)
    expected = merged_state_dict(model)
    path = save_meta_checkpoint(model, tmp_path / "vit_b.pth")
    del model
    meta = sa.sam_model_registry["vit_b"](checkpoint=str(path))
    state = meta.state_dict()
    for key in ("image_encoder.blocks.0.attn.qkv.weight", "mask_decoder.iou_token.weight"):
        torch.testing.assert_close(state[key], expected[key])


# ----------------------------------------------------------------------------- runs


def _config(**kw) -> TrainConfig:
    base = {
        "epochs": 2,
        "batch_size": 2,
        "lr": 1e-3,
        "warmup_steps": 2,
        "points": 1,
        "val_clicks": 2,
    }
    return TrainConfig(**{**base, **kw})


def test_resume_reproduces_an_uninterrupted_run(tmp_path: Path) -> None:
    samples = open_dataset(make_shapes_dataset(tmp_path / "d", 4, seed=3, size=64))
    straight = Trainer(_tiny(), samples, samples[:1], _config(), tmp_path / "a.pth", progress=False)
    straight.run()
    first = Trainer(_tiny(), samples, samples[:1], _config(), tmp_path / "b.pth",
                    embeddings=tmp_path / "a.embeddings", progress=False)  # fmt: skip
    first.run(until=1)  # interrupted after the first epoch
    second = Trainer(_tiny(), samples, samples[:1], _config(), tmp_path / "b.pth",
                     embeddings=tmp_path / "a.embeddings", progress=False)  # fmt: skip
    second.resume(tmp_path / "b.state.pt")
    assert second.epoch == 1 and second.step == 2
    second.run()
    a = torch.load(tmp_path / "a.pth", weights_only=True)
    b = torch.load(tmp_path / "b.pth", weights_only=True)
    for key in a:
        torch.testing.assert_close(a[key], b[key], msg=key)
    rows = read_log(tmp_path / "b.metrics.jsonl")
    assert [r["epoch"] for r in rows if r["kind"] == "val"] == [0, 1, 2]
    assert (tmp_path / "b.metrics.png").stat().st_size > 1000
    with pytest.raises(tijeras.TijerasError, match="other training settings"):
        Trainer(_tiny(), samples, [], _config(lr=0.5), tmp_path / "c.pth",
                embeddings=tmp_path / "a.embeddings", progress=False).resume(
            tmp_path / "b.state.pt"
        )  # fmt: skip


def test_lora_run_encodes_on_the_fly(tmp_path: Path) -> None:
    samples = open_dataset(make_shapes_dataset(tmp_path / "d", 2, seed=4, size=64))
    notes: list[str] = []
    trainer = Trainer(_tiny(), samples, [], _config(epochs=1, lora_rank=2, points=0),
                      tmp_path / "l.pth", progress=False, echo=notes.append)  # fmt: skip
    assert trainer.store is None and "on the fly" in notes[0]
    before = trainer.model.image_encoder.blocks[0].attn.qkv.lora_b.detach().clone()
    trainer.run()
    after = trainer.model.image_encoder.blocks[0].attn.qkv.lora_b
    assert (after - before).abs().max() > 0  # the adapters trained
    tijeras.build_model("test-tiny", checkpoint=tmp_path / "l.pth")  # merged, strict


def test_training_raises_validation_miou(tmp_path: Path) -> None:
    """A random tiny SAM learns the synthetic shapes: mIoU@1 and box mIoU rise far."""
    train = open_dataset(make_shapes_dataset(tmp_path / "train", 24, seed=1))
    val = open_dataset(make_shapes_dataset(tmp_path / "val", 8, seed=2))
    config = TrainConfig(epochs=8, batch_size=4, lr=5e-3, warmup_steps=5, points=0,
                         val_clicks=2, log_every=3)  # fmt: skip
    rows = Trainer(_tiny(), train, val, config, tmp_path / "ft.pth", progress=False).run()
    vals = [r for r in rows if r["kind"] == "val"]
    start, end = vals[0], vals[-1]
    assert start["epoch"] == 0 and end["epoch"] == 8
    assert start["miou@1"] < 0.3 and start["box_miou"] < 0.3
    assert end["miou@1"] > start["miou@1"] + 0.4
    assert end["box_miou"] > start["box_miou"] + 0.4
    losses = [r["loss"] for r in rows if r["kind"] == "train"]
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3])
