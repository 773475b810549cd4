"""Fine-tuning SAM-family models: data, prompt simulation, losses, LoRA, loop, checkpoints."""

from __future__ import annotations

from .checkpoint import load_training_state, meta_state_dict, save_meta_checkpoint
from .loop import TrainConfig, Trainer, read_log

__all__ = [
    "TrainConfig",
    "Trainer",
    "load_training_state",
    "meta_state_dict",
    "read_log",
    "save_meta_checkpoint",
]
