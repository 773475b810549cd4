"""One side of the video benchmark, in its own fresh process: prints one JSON line.

    python bench/_video_worker.py clip --impl meta|tijeras --checkpoint W.pt --clip DIR
        [--config sam2.1_hiera_t] [--objects 1] [--frames 40] [--dtype bfloat16]
    python bench/_video_worker.py long --frames 2000 [--api stream|offline] [--keep-all]

``clip``: time to the first mask (``init_state`` + the first click, as a user waits for it),
propagation frames per second over the clip, peak memory. ``long``: tijeras on a synthetic
video generated frame by frame (a disc moving over a gradient, 480 x 270), with a reduced
SAM 2.1 model (320 x 320 input, small trunk), to measure peak memory against video length.

Run by bench/video_bench.py; not meant to be run by hand.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

POINTS = [[210, 350], [700, 250], [480, 150]]


def build(impl: str, config: str, checkpoint: str):
    if impl == "meta":
        from sam2.build_sam import build_sam2_video_predictor
    else:
        from tijeras.sam2 import build_sam2_video_predictor
    folder = "sam2.1" if config.startswith("sam2.1") else "sam2"
    return build_sam2_video_predictor(f"configs/{folder}/{config}.yaml", checkpoint, device="cpu")


def cpu_seconds() -> float:
    """User + system CPU time of this process (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_clip(args: argparse.Namespace) -> dict:
    import torch

    t0 = time.perf_counter()
    predictor = build(args.impl, args.config, args.checkpoint)
    if args.dtype == "bfloat16":
        if args.impl == "meta":
            raise SystemExit("Meta's predictor runs bfloat16 only under CUDA autocast")
        predictor.model.to(torch.bfloat16)
    result = {
        "impl": args.impl,
        "dtype": args.dtype,
        "objects": args.objects,
        "build_s": time.perf_counter() - t0,
    }
    with torch.inference_mode():
        start = time.perf_counter()
        state = predictor.init_state(args.clip)
        predictor.add_new_points_or_box(state, 0, 1, points=[POINTS[0]], labels=[1])
        result["first_mask_s"] = time.perf_counter() - start
        for i in range(1, args.objects):
            predictor.add_new_points_or_box(state, 0, i + 1, points=[POINTS[i]], labels=[1])
        start, cpu_start = time.perf_counter(), cpu_seconds()
        times = []
        last = start
        for _ in predictor.propagate_in_video(state, max_frame_num_to_track=args.frames - 1):
            now = time.perf_counter()
            times.append(now - last)
            last = now
        total = time.perf_counter() - start
        cpu = cpu_seconds() - cpu_start
    result["frames"] = len(times)
    result["propagate_s"] = total
    result["fps"] = len(times) / total
    result["cpu_s_per_frame"] = cpu / len(times)
    result["frame_s_last10"] = sum(times[-10:]) / min(10, len(times))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


class SyntheticVideo:
    """``n`` frames of a disc moving over a gradient, made when asked for (never stored)."""

    def __init__(self, n: int, h: int = 270, w: int = 480) -> None:
        import numpy as np

        self.n, self.h, self.w = n, h, w
        y, x = np.mgrid[0:h, 0:w]
        self._xy = (x, y)
        self._background = np.stack([x * 255 // w, y * 255 // h, np.full_like(x, 90)], -1).astype(
            np.uint8
        )

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        import numpy as np

        x, y = self._xy
        frame = self._background.copy()
        cx = 50 + (i * 5) % (self.w - 100)
        cy = self.h // 2 + int(40 * np.sin(i / 25))
        frame[(x - cx) ** 2 + (y - cy) ** 2 < 30**2] = (230, 60, 40)
        return frame


def long_model():
    from dataclasses import replace

    import torch

    from tijeras.models.sam2.config import HIERA_TINY, SAM2_1_HIERA_TINY
    from tijeras.models.sam2.model import Sam2Model

    trunk = replace(HIERA_TINY, embed_dim=32, stages=(1, 1, 2, 1), global_att_blocks=(3,))
    memory = replace(SAM2_1_HIERA_TINY.memory, attention_layers=2, attention_ffn_dim=256)
    config = replace(SAM2_1_HIERA_TINY, image_size=320, trunk=trunk, memory=memory)
    torch.manual_seed(0)
    model = Sam2Model(config).eval()
    with torch.no_grad():
        model.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.add_(5.0)
    return model


def run_long(args: argparse.Namespace) -> dict:
    import torch

    from tijeras.models.sam2.video_config import tracking_config

    torch.set_num_threads(args.threads)
    model = long_model()
    video = SyntheticVideo(args.frames)
    start = time.perf_counter()
    prompt_xy = [[50, 135]]
    with torch.inference_mode():
        if args.api == "stream":
            from tijeras.video.stream import ObjectPrompt, VideoStream

            stream = VideoStream(model)
            first = [ObjectPrompt(1, points=prompt_xy, labels=[1])]
            for i in range(len(video)):
                stream.push(video[i], first if i == 0 else ())
        else:
            from tijeras.sam2.video_predictor import SAM2VideoPredictor

            predictor = SAM2VideoPredictor(model, tracking_config(model.config))
            state = predictor.init_state(video, keep_all_memories=args.keep_all)
            predictor.add_new_points_or_box(state, 0, 1, points=prompt_xy, labels=[1])
            for _ in predictor.propagate_in_video(state):
                pass
    seconds = time.perf_counter() - start
    return {
        "api": args.api,
        "keep_all": args.keep_all,
        "frames": args.frames,
        "seconds": seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    clip = sub.add_parser("clip")
    clip.add_argument("--impl", choices=["meta", "tijeras"], required=True)
    clip.add_argument("--config", default="sam2.1_hiera_t")
    clip.add_argument("--checkpoint", required=True)
    clip.add_argument("--clip", required=True)
    clip.add_argument("--objects", type=int, default=1, choices=[1, 2, 3])
    clip.add_argument("--frames", type=int, default=40)
    clip.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    clip.add_argument("--threads", type=int, default=2)
    long = sub.add_parser("long")
    long.add_argument("--frames", type=int, default=2000)
    long.add_argument("--api", choices=["stream", "offline"], default="stream")
    long.add_argument("--keep-all", action="store_true")
    long.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    result = run_clip(args) if args.mode == "clip" else run_long(args)
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
