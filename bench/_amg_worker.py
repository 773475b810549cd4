"""One side of the everything-mode benchmark, in its own fresh process (one JSON line out).

    python bench/_amg_worker.py --impl meta|tijeras --checkpoint W.pth --image I.jpg \
        [--dtype bfloat16] [--options '{"points_per_side": 32}'] [--save-masks out.json]

Run by bench/amg_bench.py. The encoder is included in the time (``generate`` encodes).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=["meta", "tijeras"], required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--options", default="{}")
    parser.add_argument("--save-masks", default=None)
    parser.add_argument("--model", default="vit_b", help="registry key (vit_t: MobileSAM)")
    args = parser.parse_args()
    options = json.loads(args.options)

    if args.impl == "meta":
        if args.model == "vit_t":
            import mobile_sam as lib  # the official MobileSAM package
        else:
            import segment_anything as lib

        generator_cls = lib.SamAutomaticMaskGenerator
    else:
        import tijeras as lib
        from tijeras.automatic.generator import SamAutomaticMaskGenerator as generator_cls
    import numpy as np
    import torch
    from PIL import Image

    torch.set_num_threads(2)
    image = np.array(Image.open(args.image).convert("RGB").resize((1500, 1000)))
    sam = lib.sam_model_registry[args.model](checkpoint=args.checkpoint)
    if args.model == "vit_t":
        sam.eval()  # as MobileSAM's README does: its attention biases are gathered in eval()
    if args.dtype == "bfloat16":
        sam = sam.to(torch.bfloat16)
    generator = generator_cls(sam, output_mode="coco_rle", **options)
    with torch.inference_mode():
        start = time.perf_counter()
        records = generator.generate(image)
        seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.save_masks:
        with open(args.save_masks, "w") as f:
            json.dump([{k: r[k] for k in ("segmentation", "predicted_iou")} for r in records], f)
    json.dump({"seconds": seconds, "masks": len(records), "peak_rss_mb": peak_mb}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
