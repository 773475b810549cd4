"""Fine-tuning: the mask decoder and prompt encoder (optionally LoRA in the image encoder).

Each step takes ``batch_size`` objects and simulates SAM's interactive training: a first
prompt (a foreground point drawn uniformly from the object, or its box with corner noise, with
equal probability), then ``points`` iterations that each add a click drawn uniformly from the
error region, plus two iterations without a new click (one at a random place, one at the end);
the previous low-res logits are always fed back as the mask prompt. Every iteration adds SAM's
loss (:mod:`tijeras.train.losses`). AdamW with a linear warm-up, then cosine decay to zero (or a
constant rate). After every epoch the validation objects are evaluated with the benchmark
protocol (:mod:`tijeras.evaluate`), the weights are written in Meta's format, and a
training-state file allows resuming from that epoch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..contract import Trainable
from ..evaluate.dataset import ObjectSample
from ..types import PromptBatch
from . import prompts
from .checkpoint import (
    load_training_state,
    restore_rng,
    rng_state,
    save_meta_checkpoint,
    save_training_state,
)
from .data import EmbeddingStore, TrainObject, image_batch, prepare_objects
from .lora import add_lora
from .losses import sam_loss


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a fine-tuning run (defaults follow SAM's recipe where it applies)."""

    epochs: int = 10
    batch_size: int = 4
    lr: float = 1e-4
    weight_decay: float = 0.1
    warmup_steps: int = 50
    schedule: str = "cosine"
    points: int = 8
    box_probability: float = 0.5
    lora_rank: int = 0
    lora_alpha: float = 16.0
    val_clicks: int = 20
    seed: int = 0
    amp: bool = False
    log_every: int = 10


class WarmupSchedule:
    """Learning-rate factor: linear warm-up over ``warmup`` steps, then cosine or constant."""

    def __init__(self, total: int, warmup: int, kind: str) -> None:
        if kind not in ("cosine", "constant"):
            raise ValueError(f"schedule must be 'cosine' or 'constant', got {kind!r}")
        self.total, self.warmup, self.kind = total, warmup, kind

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        if self.kind == "constant":
            return 1.0
        span = max(1, self.total - self.warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - self.warmup) / span)))


def trainable_parameters(model: Trainable, config: TrainConfig) -> list[torch.nn.Parameter]:
    """Freeze the image encoder; train the prompt encoder, the decoder and any LoRA adapters."""
    model.requires_grad_(False)
    params = list(model.decoder_parameters())
    for p in params:
        p.requires_grad_(True)
    if config.lora_rank > 0:
        params += add_lora(model.image_encoder_module(), config.lora_rank, config.lora_alpha)
    return params


def decode(
    model: Trainable,
    features: torch.Tensor,
    points: tuple[torch.Tensor, torch.Tensor] | None,
    boxes: torch.Tensor | None,
    mask_input: torch.Tensor | None,
    multimask: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The plain (autograd) decoder: B x C x h x w features -> B x M x S x S logits, B x M IoU."""
    batch = PromptBatch(
        points=None if points is None else points[0],
        labels=None if points is None else points[1],
        boxes=boxes,
        masks=mask_input,
    )
    decoded = model.decode_train(features, batch, multimask=multimask)
    return decoded.low_res_logits, decoded.iou_scores


def simulate(
    model: torch.nn.Module,
    features: torch.Tensor,
    batch: dict[str, torch.Tensor],
    config: TrainConfig,
    generator: torch.Generator,
) -> tuple[torch.Tensor, dict[str, float]]:
    """One interactive training simulation over a batch; the mean loss over its iterations.

    Args:
        features: B x C x h x w image embeddings.
        batch: ``gt``/``valid`` (B x S x S bool), ``box`` (B x 4), ``limits`` (B x 2: w, h).
    """
    gt, valid = batch["gt"], batch["valid"]
    cell = model.input_spec.image_size // gt.shape[-1]
    dev = features.device
    use_box = bool(torch.rand((1,), generator=generator, device=dev) < config.box_probability)
    boxes = prompts.noisy_boxes(batch["box"], batch["limits"], generator) if use_box else None
    coords, labels = (None, None) if use_box else prompts.first_points(gt, cell, generator)
    mask_input, pred = None, None
    total = torch.zeros((), device=dev)
    sums = {"focal": 0.0, "dice": 0.0, "iou_mse": 0.0}
    plan = [True, *prompts.schedule(config.points, generator)]
    for i, add_click in enumerate(plan):
        if i > 0 and add_click:
            c, lab = prompts.corrective_points(pred, gt, valid, cell, generator)
            coords = c if coords is None else torch.cat([coords, c], dim=1)
            labels = lab if labels is None else torch.cat([labels, lab], dim=1)
        multimask = i == 0 and not use_box
        points = None if coords is None else (coords, labels)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=config.amp):
            logits, iou_pred = decode(model, features, points, boxes, mask_input, multimask)
        loss, parts, _ = sam_loss(logits, iou_pred, gt, valid)
        total = total + loss
        for key, value in parts.items():
            sums[key] += float(value)
        pick = iou_pred.float().argmax(dim=1)
        chosen = logits[torch.arange(logits.shape[0], device=dev), pick][:, None]
        mask_input = chosen.detach().float()
        pred = mask_input[:, 0] > 0
    n = len(plan)
    return total / n, {key: value / n for key, value in sums.items()}


def collate(objects: Sequence[TrainObject], device: torch.device) -> dict[str, torch.Tensor]:
    """Stack the targets of a batch onto ``device``."""
    return {
        "gt": torch.stack([o.gt for o in objects]).to(device),
        "valid": torch.stack([o.valid for o in objects]).to(device),
        "box": torch.stack([o.box for o in objects]).to(device),
        "limits": torch.tensor(
            [[o.input_size[1], o.input_size[0]] for o in objects], dtype=torch.float32
        ).to(device),
    }


def output_paths(out: Path) -> dict[str, Path]:
    """Files written next to the fine-tuned weights ``out``."""
    stem = out.with_suffix("")
    return {
        "weights": out,
        "best": Path(f"{stem}.best{out.suffix or '.pth'}"),
        "state": Path(f"{stem}.state.pt"),
        "log": Path(f"{stem}.metrics.jsonl"),
        "plot": Path(f"{stem}.metrics.png"),
        "embeddings": Path(f"{stem}.embeddings"),
    }


class Trainer:
    """A fine-tuning run: data, optimizer, schedule, validation, checkpoints and the log.

    Args:
        model: a SAM-family model (float32) from :func:`tijeras.load_model`.
        train_samples: objects to train on.
        val_samples: objects to validate on after every epoch (may be empty).
        config: the hyper-parameters.
        out: the fine-tuned weights file; the log, plot, state and embeddings go beside it.
        embeddings: folder of the cached embeddings (default: beside ``out``).
        progress: show tqdm progress bars.
        echo: where one-line messages go.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        train_samples: Sequence[ObjectSample],
        val_samples: Sequence[ObjectSample],
        config: TrainConfig,
        out: str | Path,
        *,
        embeddings: str | Path | None = None,
        progress: bool = True,
        echo: Callable[[str], None] = print,
    ) -> None:
        self.model, self.config, self.progress, self.echo = model, config, progress, echo
        self.paths = output_paths(Path(out))
        self.device = model.device
        self.params = trainable_parameters(model, config)
        self.val_samples = list(val_samples)
        self.store = None
        if config.lora_rank > 0:
            echo("note: LoRA trains the image encoder, so embeddings are computed on the fly")
        else:
            self.store = EmbeddingStore(embeddings or self.paths["embeddings"], model)
        self.objects = prepare_objects(
            train_samples, model, self.store, progress=progress, desc="encoding train images"
        )
        if self.store is not None and self.val_samples:
            prepare_objects(
                self.val_samples, model, self.store, progress=progress, desc="encoding val images"
            )
        self.steps_per_epoch = max(1, math.ceil(len(self.objects) / config.batch_size))
        self.optimizer = torch.optim.AdamW(
            self.params, lr=config.lr, weight_decay=config.weight_decay
        )
        total = config.epochs * self.steps_per_epoch
        self.schedule = WarmupSchedule(total, config.warmup_steps, config.schedule)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.schedule)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(config.seed)
        self.rng = np.random.default_rng(config.seed)
        self.epoch, self.step, self.best = 0, 0, -1.0

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        names = {id(p) for p in self.params}
        trainable = {
            k: v.detach().cpu() for k, v in self.model.named_parameters() if id(v) in names
        }
        return {
            "epoch": self.epoch,
            "step": self.step,
            "best": self.best,
            "config": asdict(self.config),
            "trainable": trainable,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": rng_state(self.generator, self.rng),
        }

    def resume(self, path: str | Path) -> None:
        """Continue from a training-state file (the epochs may be raised, nothing else)."""
        from ..errors import CheckpointError

        state = load_training_state(path)
        saved = TrainConfig(**state["config"])
        if replace(saved, epochs=self.config.epochs) != self.config:
            raise CheckpointError(
                f"{path} was written with other training settings ({saved}); resume with the "
                "same settings (only the number of epochs may change)"
            )
        missing = set(state["trainable"]) ^ {
            n for n, p in self.model.named_parameters() if p.requires_grad
        }
        if missing:
            raise CheckpointError(f"{path} does not fit this model: {sorted(missing)[:4]}")
        self.model.load_state_dict(state["trainable"], strict=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        # The schedule follows the (possibly raised) number of epochs of this run.
        total = self.config.epochs * self.steps_per_epoch
        self.schedule.__init__(total, self.config.warmup_steps, self.config.schedule)
        for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
            group["lr"] = base * self.schedule(self.scheduler.last_epoch)
        restore_rng(state["rng"], self.generator, self.rng)
        self.epoch, self.step, self.best = state["epoch"], state["step"], state["best"]

    # ------------------------------------------------------------------ loop
    def features(self, objects: Sequence[TrainObject]) -> torch.Tensor:
        """B x C x h x w embeddings (from the files, or the encoder with its adapters)."""
        if self.store is None:
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.amp):
                return self.model.image_encoder_module()(image_batch(objects, self.model)).float()
        feats = [self.store.features(o.sample.image_path) for o in objects]
        return torch.cat(feats).to(self.device, non_blocking=True)

    def train_epoch(self) -> None:
        from tqdm import tqdm

        self.model.train()
        order = self.rng.permutation(len(self.objects))
        size = self.config.batch_size
        window: list[dict[str, float]] = []
        bar = tqdm(
            range(self.steps_per_epoch),
            desc=f"epoch {self.epoch + 1}/{self.config.epochs}",
            disable=not self.progress,
            leave=False,
        )
        for i in bar:
            batch_objs = [self.objects[j] for j in order[i * size : (i + 1) * size]]
            self.optimizer.zero_grad(set_to_none=True)
            loss, parts = simulate(
                self.model,
                self.features(batch_objs),
                collate(batch_objs, self.device),
                self.config,
                self.generator,
            )
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            self.step += 1
            window.append({"loss": float(loss.detach()), **parts})
            bar.set_postfix(loss=f"{window[-1]['loss']:.4f}")
            if len(window) == self.config.log_every or i == self.steps_per_epoch - 1:
                self.log_train(window)
                window = []

    def log_train(self, window: list[dict[str, float]]) -> None:
        row: dict[str, Any] = {"kind": "train", "epoch": self.epoch + 1, "step": self.step}
        for key in window[0]:
            row[key] = float(np.mean([w[key] for w in window]))
        row["lr"] = self.optimizer.param_groups[0]["lr"]
        self.write_row(row)

    def validate(self) -> dict[str, Any] | None:
        """Evaluate the validation objects with the benchmark protocol; log and return it."""
        from ..engine.predictor import Predictor
        from ..evaluate.runner import evaluate

        if not self.val_samples:
            return None
        self.model.eval()
        predictor = Predictor(self.model, cache_size=0, model_name="train")
        result = evaluate(
            predictor,
            self.val_samples,
            max_clicks=self.config.val_clicks,
            embedding_for=None if self.store is None else self.store.embedding_for,
            progress=self.progress,
            desc="validating",
        )
        summary = {k: v for k, v in result.summary.items() if k != "miou_curve"}
        summary["miou_mean"] = float(np.mean(result.summary["miou_curve"]))
        row = {"kind": "val", "epoch": self.epoch, "step": self.step, **summary}
        self.write_row(row)
        self.echo(
            f"epoch {self.epoch}: val mIoU@1 {summary['miou@1']:.4f}  "
            f"box mIoU {summary['box_miou']:.4f}  NoC@90 {summary['noc@90']:.2f}"
        )
        return row

    def write_row(self, row: dict[str, Any]) -> None:
        path = self.paths["log"]
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    def end_epoch(self, val: dict[str, Any] | None) -> None:
        """Write the weights, the best weights, the training state and the plot."""
        from ..evaluate.plot import plot_training

        save_meta_checkpoint(self.model, self.paths["weights"])
        if val is not None and val["miou_mean"] > self.best:
            self.best = val["miou_mean"]
            save_meta_checkpoint(self.model, self.paths["best"])
        save_training_state(self.paths["state"], self.state())
        plot_training(read_log(self.paths["log"]), self.paths["plot"])

    def run(self, until: int | None = None) -> list[dict[str, Any]]:
        """Train up to ``config.epochs`` (or stop after epoch ``until``); return the log rows.

        The untrained model is validated first when starting from scratch.
        """
        if self.epoch == 0 and self.val_samples:
            self.validate()
        last = self.config.epochs if until is None else min(until, self.config.epochs)
        while self.epoch < last:
            self.train_epoch()
            self.epoch += 1
            self.end_epoch(self.validate())
        return read_log(self.paths["log"])


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a metrics log (JSON lines)."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
