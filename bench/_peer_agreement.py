"""Mask agreement of tijeras' fast modes with its float32 masks on the development photos
(one fresh process, one JSON line out).

    python bench/_peer_agreement.py --checkpoint vit_b.pt --images DIR [--device cpu]

For every photo: a point at the centre and at a third of the way in, and a box around the
middle half; the IoU of each of the three candidates of ``bfloat16`` (everything bfloat16) and
of ``auto`` (what ``--dtype auto`` picks on this machine) with ``float32``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def prompts(h: int, w: int) -> dict[str, dict]:
    return {
        "centre point": {
            "point_coords": np.array([[w // 2, h // 2]]),
            "point_labels": np.array([1]),
        },
        "third point": {
            "point_coords": np.array([[w // 3, h // 3]]),
            "point_labels": np.array([1]),
        },
        "middle box": {"box": np.array([w // 4, h // 4, 3 * w // 4, 3 * h // 4])},
    }


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--model", default="sam-vit-b")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    import tijeras
    from tijeras.io import load_image

    torch.set_num_threads(args.threads)
    modes = {"float32": "float32", "bfloat16": "bfloat16", "auto": "auto"}
    predictors = {}
    for name, dtype in modes.items():
        torch.manual_seed(0)  # the same weights when the model has no checkpoint
        model = tijeras.load_model(args.model, args.checkpoint, device=args.device, dtype=dtype)
        predictors[name] = tijeras.Predictor(model, cache_size=0)
    photos = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    result: dict = {"photos": {}, "lowest": {}, "mean": {}}
    every: dict[str, list[float]] = {"bfloat16": [], "auto": []}
    with torch.inference_mode():
        for photo in photos:
            image = load_image(photo)
            h, w = image.shape[:2]
            masks: dict[str, dict[str, np.ndarray]] = {}
            for name, predictor in predictors.items():
                predictor.set_image(image)
                masks[name] = {k: predictor.predict(**p).masks for k, p in prompts(h, w).items()}
            entry = {}
            for name in every:
                values = [
                    iou(a, b)
                    for k in masks["float32"]
                    for a, b in zip(masks[name][k], masks["float32"][k])
                ]
                entry[name] = [round(v, 4) for v in values]
                every[name] += values
            result["photos"][photo.name] = entry
    for name, values in every.items():
        result["lowest"][name] = min(values)
        result["mean"][name] = float(np.mean(values))
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
