"""``tijeras eval`` and ``tijeras train``: benchmark a model, fine-tune one.

::

    tijeras eval --data my_dataset/ --model sam-vit-b          # NoC@85/90, mIoU per click ...
    tijeras train --data my_dataset/ --model sam-vit-b --out finetuned.pth
    tijeras eval --data my_dataset/val --checkpoint finetuned.pth

``--data`` is a folder with ``images/`` and ``masks/`` (optionally ``ignore/``), or a COCO
instances JSON (with ``--images DIR``). For training, a folder with ``train/`` and ``val/``
subfolders in that layout is split accordingly; otherwise ``--val-fraction`` of the images are
held out (or ``--val`` names the validation data).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from tijeras.cli.common import (
    CacheOption,
    CheckpointOption,
    DeviceOption,
    DType,
    DTypeOption,
    ModelOption,
    _fail,
    _user_errors,
    app,
    model_builder,
)
from tijeras.defaults import DEFAULT_MODEL

DataOption = Annotated[
    Path,
    typer.Option(
        "--data",
        "-d",
        metavar="PATH",
        help="Folder with images/ and masks/ (optional ignore/), or a COCO instances JSON.",
        show_default=False,
    ),
]
ImagesOption = Annotated[
    Path | None,
    typer.Option("--images", metavar="DIR", help="Image folder of a COCO JSON."),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


def _dataset_name(data: Path) -> str:
    data = data.resolve()
    return data.stem if data.suffix.lower() == ".json" else data.name


# ----------------------------------------------------------------------------- eval


@app.command("eval")
def eval_command(
    data: DataOption,
    images: ImagesOption = None,
    model: ModelOption = DEFAULT_MODEL,
    checkpoint: CheckpointOption = None,
    device: DeviceOption = "cpu",
    dtype: DTypeOption = DType.float32,
    cache: CacheOption = None,
    max_clicks: Annotated[
        int, typer.Option("--max-clicks", min=1, help="Click budget per object.")
    ] = 20,
    box: Annotated[
        bool, typer.Option("--box/--no-box", help="Also measure the tight-box prompt.")
    ] = True,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", metavar="FILE.json", help="Results (default: beside cwd)."),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot", metavar="FILE.png", help="mIoU-per-click plot (default: --out .png)."
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Evaluate the first N objects only.")
    ] = None,
    quiet: QuietOption = False,
) -> None:
    """Interactive-segmentation benchmark: NoC@85/90, mIoU per click, box mIoU, a plot."""
    with _user_errors():
        _eval(
            data,
            images,
            model,
            checkpoint,
            device,
            dtype.value,
            cache,
            max_clicks,
            box,
            out,
            plot,
            limit,
            quiet,
        )


def _eval(
    data: Path,
    images: Path | None,
    model_name: str,
    checkpoint: Path | None,
    device: str,
    dtype: str,
    cache: Path | None,
    max_clicks: int,
    with_box: bool,
    out: Path | None,
    plot: Path | None,
    limit: int | None,
    quiet: bool,
) -> None:
    from tijeras.catalog import get_spec
    from tijeras.evaluate.dataset import open_dataset

    spec = get_spec(model_name)
    samples = open_dataset(data, images)[:limit]
    build = model_builder(spec.name, checkpoint, device, dtype, cache)
    label = spec.name if checkpoint is None else f"{spec.name}+{checkpoint.name}"
    out = out or Path(f"{_dataset_name(data)}-{label.replace('+', '-')}.eval.json")
    plot = plot or out.with_suffix(".png")

    import torch

    from tijeras import Predictor
    from tijeras.evaluate.metrics import format_table
    from tijeras.evaluate.plot import plot_miou_curves
    from tijeras.evaluate.runner import evaluate

    try:
        predictor = Predictor(build(), model_name=spec.name)
        result = evaluate(
            predictor, samples, max_clicks=max_clicks, with_box=with_box, progress=not quiet
        )
    except torch.OutOfMemoryError:
        _fail(f"out of memory on {device}: try --device cpu or a smaller model")
    result.info = {
        "data": str(data),
        "model": spec.name,
        "checkpoint": None if checkpoint is None else str(checkpoint),
        "device": device,
        "dtype": dtype,
        "protocol": "RITM clicks (max distance transform of the errors), previous logits as "
        "mask prompt, multimask by predicted IoU on the first click",
    }
    typer.echo(format_table(result.summary, f"{label} on {_dataset_name(data)}"))
    result.save_json(out)
    plot_miou_curves({label: result.summary["miou_curve"]}, plot, f"{_dataset_name(data)}")
    typer.echo(f"wrote {out} and {plot}")


# ----------------------------------------------------------------------------- train


def _train_val_samples(
    data: Path, val: Path | None, images: Path | None, val_fraction: float, seed: int
) -> tuple[list[Any], list[Any]]:
    from tijeras.evaluate.dataset import is_mask_folder, open_dataset, split_samples

    if val is not None:
        return open_dataset(data, images), open_dataset(val, images)
    if data.is_dir() and is_mask_folder(data / "train") and is_mask_folder(data / "val"):
        return open_dataset(data / "train"), open_dataset(data / "val")
    samples = open_dataset(data, images)
    if val_fraction <= 0:
        return samples, []
    return split_samples(samples, val_fraction, seed)


@app.command("train")
def train_command(
    data: DataOption,
    out: Annotated[
        Path,
        typer.Option("--out", "-o", metavar="FILE.pth", help="Fine-tuned weights (Meta format)."),
    ] = Path("finetuned.pth"),
    val: Annotated[
        Path | None, typer.Option("--val", metavar="PATH", help="Validation data.")
    ] = None,
    val_fraction: Annotated[
        float, typer.Option("--val-fraction", help="Images held out when there is no --val.")
    ] = 0.2,
    images: ImagesOption = None,
    model: ModelOption = DEFAULT_MODEL,
    checkpoint: CheckpointOption = None,
    device: DeviceOption = "cpu",
    dtype: Annotated[
        DType, typer.Option("--dtype", help="bfloat16: autocast (weights stay float32).")
    ] = DType.float32,
    cache: CacheOption = None,
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 10,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 4,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (AdamW).")] = 1e-4,
    weight_decay: Annotated[float, typer.Option("--weight-decay")] = 0.1,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Warm-up steps.")] = 50,
    schedule: Annotated[str, typer.Option("--schedule", help="cosine or constant.")] = "cosine",
    points: Annotated[
        int, typer.Option("--points", min=0, help="Corrective clicks per simulation (SAM: 8).")
    ] = 8,
    lora_rank: Annotated[
        int, typer.Option("--lora-rank", min=0, help="LoRA rank in the encoder (0: frozen).")
    ] = 0,
    lora_alpha: Annotated[float, typer.Option("--lora-alpha")] = 16.0,
    val_clicks: Annotated[int, typer.Option("--val-clicks", min=1)] = 20,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    resume: Annotated[
        Path | None, typer.Option("--resume", metavar="STATE.pt", help="Continue a run.")
    ] = None,
    embeddings: Annotated[
        Path | None, typer.Option("--embeddings", metavar="DIR", help="Embedding cache.")
    ] = None,
    quiet: QuietOption = False,
) -> None:
    """Fine-tune the mask decoder and prompt encoder (optionally LoRA in the image encoder)."""
    from tijeras.train.loop import TrainConfig

    if schedule not in ("cosine", "constant"):
        _fail(f"--schedule must be cosine or constant, got {schedule!r}")
    config = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        warmup_steps=warmup,
        schedule=schedule,
        points=points,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        val_clicks=val_clicks,
        seed=seed,
        amp=dtype is DType.bfloat16,
    )
    with _user_errors():
        _train(
            data,
            val,
            images,
            val_fraction,
            model,
            checkpoint,
            device,
            cache,
            config,
            out,
            resume,
            embeddings,
            quiet,
        )


def _train(
    data: Path,
    val: Path | None,
    images: Path | None,
    val_fraction: float,
    model_name: str,
    checkpoint: Path | None,
    device: str,
    cache: Path | None,
    config: Any,
    out: Path,
    resume: Path | None,
    embeddings: Path | None,
    quiet: bool,
) -> None:
    from tijeras.catalog import get_spec
    from tijeras.errors import TijerasError

    spec = get_spec(model_name)
    train_samples, val_samples = _train_val_samples(data, val, images, val_fraction, config.seed)
    typer.echo(f"{len(train_samples)} training objects, {len(val_samples)} validation objects")
    model = model_builder(spec.name, checkpoint, device, "float32", cache)()
    from tijeras.contract import Trainable

    if not isinstance(model, Trainable) or model.input_spec.resize != "longest_side":
        raise TijerasError(f"{spec.name}: training supports the SAM and MobileSAM models")
    from tijeras.train.loop import Trainer

    try:
        trainer = Trainer(
            model,
            train_samples,
            val_samples,
            config,
            out,
            embeddings=embeddings,
            progress=not quiet,
            echo=typer.echo,
        )
    except ValueError as exc:  # LoRA on an encoder without qkv layers
        raise TijerasError(f"{spec.name}: {exc}") from None
    if resume is not None:
        trainer.resume(resume)
        typer.echo(f"resumed from {resume} at epoch {trainer.epoch}")
    trainer.run()
    paths = trainer.paths
    typer.echo(
        f"wrote {paths['weights']} (best: {paths['best']}), log {paths['log']}, "
        f"plot {paths['plot']}, state {paths['state']}"
    )
