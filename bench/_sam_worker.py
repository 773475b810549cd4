"""One side of the SAM benchmark, in its own fresh process: prints one JSON line of timings.

    python bench/_sam_worker.py --impl meta|tijeras --checkpoint W.pth --image I.jpg [--dtype bf16]

Run by bench/sam_bench.py; not meant to be run by hand.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time


def timed(fn, repeat: int) -> float:
    """Median wall time of ``repeat`` calls, in milliseconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=["meta", "tijeras"], required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument(
        "--dtype", default="float32", choices=["float32", "bfloat16", "bfloat16-encoder"]
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="vit_b", help="registry key (vit_t: MobileSAM)")
    parser.add_argument("--save-masks", default=None, help="write the point and box masks (.npz)")
    args = parser.parse_args()

    t0 = time.perf_counter()
    if args.impl == "meta" and args.model == "vit_t":
        import mobile_sam as lib  # the official MobileSAM package
    elif args.impl == "meta":
        import segment_anything as lib
    else:
        import tijeras as lib
    import numpy as np
    import torch
    from PIL import Image

    torch.set_num_threads(args.threads)
    image = np.array(Image.open(args.image).convert("RGB").resize((1500, 1000)))
    other = np.ascontiguousarray(image[:, ::-1])

    sam = lib.sam_model_registry[args.model](checkpoint=args.checkpoint)
    if args.model == "vit_t":
        sam.eval()  # as MobileSAM's README does: its attention biases are gathered in eval()
    if args.dtype == "bfloat16":
        sam = sam.to(torch.bfloat16)
    elif args.dtype == "bfloat16-encoder":  # bf16 image encoder, float32 decoder
        sam.image_encoder.to(torch.bfloat16)
    predictor = lib.SamPredictor(sam)
    load_s = time.perf_counter() - t0

    with torch.inference_mode():
        start = time.perf_counter()
        predictor.set_image(image)
        first = time.perf_counter() - start
        start = time.perf_counter()
        predictor.set_image(other)
        second = time.perf_counter() - start
        predictor.set_image(image)

        point = {"point_coords": np.array([[500, 375]]), "point_labels": np.array([1])}
        box = {"box": np.array([425, 600, 700, 875])}
        one_point = timed(lambda: predictor.predict(**point), 15)
        one_box = timed(lambda: predictor.predict(**box), 15)
        rng = np.random.default_rng(0)
        xy = rng.uniform(0, 1300, size=(64, 2))
        boxes = torch.tensor(np.concatenate([xy, xy + rng.uniform(20, 200, (64, 2))], 1)).float()
        boxes = predictor.transform.apply_boxes_torch(boxes, predictor.original_size)
        batch64 = timed(lambda: predictor.predict_torch(None, None, boxes=boxes), 3)
        point_masks, _, _ = predictor.predict(**point)
        box_masks, _, _ = predictor.predict(**box)
    if args.save_masks:
        np.savez_compressed(args.save_masks, point=point_masks, box=box_masks)

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    json.dump(
        {
            "impl": args.impl,
            "dtype": args.dtype,
            "load_s": load_s,
            "set_image_s": (first + second) / 2,
            "set_image_first_s": first,
            "predict_point_ms": one_point,
            "predict_box_ms": one_box,
            "predict_torch_64_boxes_ms": batch64,
            "peak_rss_mb": peak_mb,
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
