"""One side of the SAM 2 benchmark, in its own fresh process: prints one JSON line of timings.

    python bench/_sam2_worker.py --impl meta|tijeras --config sam2.1_hiera_t --checkpoint W.pt
        --image I.jpg [--dtype bfloat16] [--skip-everything]

Run by bench/sam2_bench.py; not meant to be run by hand.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time

from _sam_worker import timed  # the same timing rule as the SAM worker


def build(impl: str, config: str, checkpoint: str):
    if impl == "meta":
        from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
        from sam2.build_sam import build_sam2
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        folder = "sam2.1" if config.startswith("sam2.1") else "sam2"
        model = build_sam2(f"configs/{folder}/{config}.yaml", checkpoint, device="cpu")
    else:
        from tijeras.sam2 import SAM2AutomaticMaskGenerator, SAM2ImagePredictor, build_sam2

        model = build_sam2(config, checkpoint, device="cpu")
    return model, SAM2ImagePredictor, SAM2AutomaticMaskGenerator


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=["meta", "tijeras"], required=True)
    parser.add_argument("--config", default="sam2.1_hiera_t")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-everything", action="store_true")
    args = parser.parse_args()

    t0 = time.perf_counter()
    import numpy as np
    import torch
    from PIL import Image

    torch.set_num_threads(args.threads)
    model, Predictor, Generator = build(args.impl, args.config, args.checkpoint)
    if args.dtype == "bfloat16":
        model = model.to(torch.bfloat16)
    predictor = Predictor(model)
    image = np.array(Image.open(args.image).convert("RGB").resize((1500, 1000)))
    # distinct images, so no content cache can serve a repeated encode
    images = [image, image[:, ::-1], image[::-1], image[::-1, ::-1]]
    images = [np.ascontiguousarray(x) for x in images]
    load_s = time.perf_counter() - t0

    result = {"impl": args.impl, "dtype": args.dtype, "load_s": load_s}
    with torch.inference_mode():
        times = []
        for img in images:
            start = time.perf_counter()
            predictor.set_image(img)
            times.append(time.perf_counter() - start)
        result["set_image_first_s"] = times[0]
        result["set_image_s"] = statistics.median(times[1:])
        predictor.set_image(image)
        point = {"point_coords": np.array([[500, 375]]), "point_labels": np.array([1])}
        result["predict_point_ms"] = timed(lambda: predictor.predict(**point), 15)
        box = {"box": np.array([425, 600, 700, 875])}
        result["predict_box_ms"] = timed(lambda: predictor.predict(**box), 15)
        if not args.skip_everything:
            generator = Generator(model, points_per_side=32)
            start = time.perf_counter()
            records = generator.generate(image)
            result["everything_s"] = time.perf_counter() - start
            result["everything_masks"] = len(records)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
