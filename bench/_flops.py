"""The floor of the peer benchmark: counted FLOPs of each measure, and the machine's
matrix-product rates, in one fresh process (one JSON line out).

    python bench/_flops.py --models vit_b,vit_t,sam2.1_hiera_t --checkpoints DIR.json \
        [--threads 2] [--device cpu]

FLOPs (multiply-adds count two) are counted with ``torch.utils.flop_counter`` on the
reference code (Meta's packages) and on tijeras, and the smaller of the two is the model's:
tijeras' decoder reassociates its products and does less arithmetic for the same function.
Only matrix products and convolutions are counted (norms, softmax and activations are
memory-bound and left out), so the floor is a lower bound on any implementation's time.

Rates: a (4096 x 768) @ (768 x 768) matrix product, the shape of ViT-B's linear layers, in
float32 (the faster of MKL's ``torch.mm`` and oneDNN's product) and bfloat16 through PyTorch,
and an int8 x int8 -> int32 product through
ONNX Runtime's ``MatMulInteger`` (what its int8 dynamic quantisation runs).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

TIJERAS_NAMES = {"vit_b": "sam-vit-b", "vit_t": "mobile-sam", "sam2.1_hiera_t": "sam2.1-hiera-tiny"}


def counter():
    import torch
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    def cpu_sdpa(query, key, value, *args, out_shape=None, **kwargs) -> int:
        return sdpa_flop_count(query, key, value)

    aten = torch.ops.aten
    mapping = {aten._scaled_dot_product_flash_attention_for_cpu: cpu_sdpa}
    return FlopCounterMode(display=False, custom_mapping=mapping)


def count(fn) -> int:
    import torch

    mode = counter()
    with torch.inference_mode(), mode:
        fn()
    return int(mode.get_total_flops())


def meta_flops(model: str, checkpoint: str) -> dict[str, int]:
    import numpy as np

    image = np.random.default_rng(0).integers(0, 255, (1000, 1500, 3), dtype=np.uint8)
    if model == "sam2.1_hiera_t":
        from sam2.build_sam import build_sam2
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        model_ = build_sam2(f"configs/sam2.1/{model}.yaml", checkpoint, device="cpu")
        predictor = SAM2ImagePredictor(model_)
    else:
        lib = __import__("mobile_sam" if model == "vit_t" else "segment_anything")
        sam = lib.sam_model_registry[model](checkpoint=checkpoint).eval()
        predictor = lib.SamPredictor(sam)
    encoder = count(lambda: predictor.set_image(image))
    point = {"point_coords": np.array([[500, 375]]), "point_labels": np.array([1])}
    decoder = count(lambda: predictor.predict(**point, multimask_output=True))
    return {"encoder": encoder, "decoder": decoder}


def tijeras_flops(model: str, checkpoint: str) -> dict[str, int]:
    import numpy as np

    import tijeras
    from tijeras.models.blocks import linear
    from tijeras.models.sam import tiny_vit

    # oneDNN's fused convolution and linear kernels are invisible to the counter: count the
    # same arithmetic through the plain operators
    tiny_vit._FUSION["enabled"] = False
    linear.ONEDNN["enabled"] = False
    image = np.random.default_rng(0).integers(0, 255, (1000, 1500, 3), dtype=np.uint8)
    predictor = tijeras.Predictor(tijeras.load_model(TIJERAS_NAMES[model], checkpoint))
    encoder = count(lambda: predictor.set_image(image))
    point = {"point_coords": np.array([[500, 375]]), "point_labels": np.array([1])}
    predictor.predict(**point)  # the per-image decoder part is done once, before the count
    decoder = count(lambda: predictor.predict(**point, multimask_output=True))
    return {"encoder": encoder, "decoder": decoder}


def int8_rate(threads: int, size: tuple[int, int, int], seconds: float) -> float | None:
    """GOP/s of ONNX Runtime's MatMulInteger (uint8 activations x int8 weights)."""
    try:
        import numpy as np
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError:
        return None
    m, k, n = size
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["c"])],
        "int8",
        [
            helper.make_tensor_value_info("a", TensorProto.UINT8, [m, k]),
            helper.make_tensor_value_info("b", TensorProto.INT8, [k, n]),
        ],
        [helper.make_tensor_value_info("c", TensorProto.INT32, [m, n])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), options, ["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {
        "a": rng.integers(0, 255, (m, k), dtype=np.uint8),
        "b": rng.integers(-127, 127, (k, n), dtype=np.int8),
    }
    session.run(None, feeds)
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        session.run(None, feeds)
        calls += 1
    return 2.0 * m * k * n * calls / (time.perf_counter() - start) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="vit_b,vit_t,sam2.1_hiera_t")
    parser.add_argument("--checkpoints", required=True, help="JSON: model -> checkpoint path")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()

    import torch

    from tijeras.hub.precision import measure_rates

    torch.set_num_threads(args.threads)
    checkpoints = json.loads(args.checkpoints)
    size = (4096, 768, 768)
    rates = {
        str(d).removeprefix("torch."): r
        for d, r in measure_rates(args.device, size=size, seconds=args.seconds).items()
    }
    if args.device == "cpu":
        rates["int8"] = int8_rate(args.threads, size, args.seconds)
        from tijeras.models.blocks.linear import measure_rate

        onednn = measure_rate(size, args.seconds)
        if onednn is not None:
            rates["float32_mkl"] = rates["float32"]
            rates["float32"] = max(rates["float32"], onednn)
    flops = {}
    for model in args.models.split(","):
        meta = meta_flops(model, checkpoints[model])
        ours = tijeras_flops(model, checkpoints[model])
        flops[model] = {
            part: {"meta": meta[part], "tijeras": ours[part], "floor": min(meta[part], ours[part])}
            for part in meta
        }
    json.dump({"rates_gflops": rates, "flops": flops}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
