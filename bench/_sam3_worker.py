"""One side of the SAM 3 benchmark, in its own fresh process: prints one JSON line of timings.

    python bench/_sam3_worker.py --impl transformers|tijeras --weights W.safetensors
        --size reduced|full --image I.jpg [--dtype bfloat16] [--out outputs.pt]

Run by bench/sam3_bench.py; not meant to be run by hand.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sam3_bench import PHRASES, config_for, hf_configs


def timed(fn, repeat: int) -> tuple[float, float]:
    """Median wall time and median process CPU time of ``repeat`` calls (seconds), after one
    warm-up call. With one thread the CPU time is the work done, whatever else runs on the
    machine; the wall time is what a user waits on a quiet one."""
    fn()
    walls, cpus = [], []
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def transformers_side(args, image):
    import torch
    from safetensors.torch import load_file
    from transformers import Sam3Model
    from transformers.models.sam3 import Sam3ImageProcessor

    detector_config, _ = hf_configs(args.size)
    model = Sam3Model(detector_config).eval()
    state = {
        k.removeprefix("detector_model."): v
        for k, v in load_file(args.weights).items()
        if k.startswith("detector_model.")
    }
    model.load_state_dict(state, strict=False)
    processor = Sam3ImageProcessor()
    from open_clip.tokenizer import SimpleTokenizer  # CLIP's ids; padding 0, masked

    clip = SimpleTokenizer(context_length=32)

    def tokenizer(phrases):
        ids = clip(phrases)
        return ids, ids != 0

    pixels = processor(images=image, return_tensors="pt")["pixel_values"]
    size = [image.shape[:2]]
    holder = {}

    def encode():
        with torch.inference_mode():
            holder["vision"] = model.get_vision_features(pixel_values=pixels)

    phrases = iter(PHRASES * 10)

    def prompt(phrase=None):
        ids, valid = tokenizer([phrase or next(phrases)])
        with torch.inference_mode():
            out = model(vision_embeds=holder["vision"], input_ids=ids, attention_mask=valid.long())
            found = processor.post_process_instance_segmentation(
                out, threshold=0.5, mask_threshold=0.5, target_sizes=size
            )[0]
        holder["out"] = out
        return found

    return encode, prompt, holder, pixels


def tijeras_side(args, image):
    import torch
    from safetensors.torch import load_file

    from tijeras.models.sam3.checkpoint import remap
    from tijeras.models.sam3.model import Sam3Model
    from tijeras.sam3 import Sam3Processor

    model = Sam3Model(config_for(args.size)).eval()
    state = remap({k: v for k, v in load_file(args.weights).items()})
    own = model.state_dict()
    for k, v in own.items():  # the interactive head is not benchmarked: its own random weights
        state.setdefault(k, v)
    model.load_state_dict(state, strict=True)
    if args.dtype == "bfloat16":
        model = model.to(torch.bfloat16)
    processor = Sam3Processor(model, confidence_threshold=0.5)
    holder = {}

    def encode():
        holder["state"] = processor.set_image(image)

    phrases = iter(PHRASES * 10)

    def prompt(phrase=None):
        return processor.set_text_prompt(phrase or next(phrases), holder["state"])

    return encode, prompt, holder, None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=["transformers", "tijeras"], required=True)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--size", choices=["reduced", "full"], default="reduced")
    parser.add_argument("--image", required=True)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--encoder-only", action="store_true")
    parser.add_argument("--out", default=None, help="save the first prompt's outputs (.pt)")
    args = parser.parse_args()

    import numpy as np
    import torch
    from PIL import Image

    torch.set_num_threads(args.threads)
    image = np.array(Image.open(args.image).convert("RGB"))
    side = transformers_side if args.impl == "transformers" else tijeras_side
    encode, prompt, holder, _ = side(args, image)
    result = {"impl": args.impl, "dtype": args.dtype, "size": args.size}
    if args.encoder_only:
        start, cpu = time.perf_counter(), time.process_time()
        encode()
        result["encode_s"] = time.perf_counter() - start
        result["encode_cpu_s"] = time.process_time() - cpu
    else:
        result["encode_s"], result["encode_cpu_s"] = timed(encode, args.repeat)
        found = prompt(PHRASES[0])  # the first prompt on this image (per-image work included)
        if args.impl == "transformers":
            saved = {
                "scores": found["scores"],
                "boxes": found["boxes"],
                "masks": found["masks"].bool(),
                "logits": holder["out"].pred_logits,
            }
        else:
            saved = {
                "scores": found["scores"].clone(),
                "boxes": found["boxes"].clone(),
                "masks": found["masks"][:, 0].clone(),
            }
        result["prompt_s"], result["prompt_cpu_s"] = timed(prompt, max(3, args.repeat + 1))
        if args.out:
            torch.save(
                {k: v.float() if v.is_floating_point() else v for k, v in saved.items()}, args.out
            )
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


if __name__ == "__main__":
    main()
