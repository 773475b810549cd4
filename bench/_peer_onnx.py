"""Builds the ONNX Runtime contenders of the peer benchmark (run once per benchmark, in its own
process): one JSON line out naming the files written.

    python bench/_peer_onnx.py --model vit_b --checkpoint W --out DIR

- **Meta's decoder**, exported as Meta's README and ``scripts/export_onnx_model.py`` do: its
  ``SamOnnxModel`` wrapper (all four mask tokens, masks at the original size), TorchScript
  exporter, opset 17, dynamic number of points.
- **An encoder export**: Meta's image encoder (SAM, MobileSAM) or SAM 2's trunk, neck and
  high-resolution projections, as ``torch.onnx.export`` gives them, fixed 1 x 3 x 1024 x 1024
  input.
- Their **int8 dynamic quantisation** (``onnxruntime.quantization.quantize_dynamic``, int8
  weights), as ONNX Runtime's documentation recommends for transformer models on CPUs.
- **tijeras' own export** (``tijeras export``): encoder and decoder with masks at the original
  size, and its int8 quantisation.

Files: ``DIR/<model>.<side>.<part>[.int8].onnx`` with side ``meta`` or ``tijeras``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
import warnings
from pathlib import Path

TIJERAS_NAMES = {"vit_b": "sam-vit-b", "vit_t": "mobile-sam", "sam2.1_hiera_t": "sam2.1-hiera-tiny"}


def meta_model(model: str, checkpoint: str):
    import torch

    if model == "sam2.1_hiera_t":
        from sam2.build_sam import build_sam2

        return build_sam2(f"configs/sam2.1/{model}.yaml", checkpoint, device="cpu").eval()
    if model == "vit_t":
        import mobile_sam as lib
    else:
        import segment_anything as lib
    sam = lib.sam_model_registry[model](checkpoint=checkpoint).eval()
    torch.set_grad_enabled(False)
    return sam


class _Sam2Encoder:
    """SAM 2's image encoder as a plain module: trunk + neck, the decoder's high-res
    projections, and ``no_mem_embed`` added, as its image predictor computes them."""

    @staticmethod
    def build(sam2):
        import torch

        class Encoder(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.sam2 = sam2

            def forward(self, x):
                out = self.sam2.forward_image(x)
                _, feats, _, _ = self.sam2._prepare_backbone_features(out)
                top = feats[-1] + self.sam2.no_mem_embed
                b, c = x.shape[0], top.shape[-1]
                return (top.permute(1, 2, 0).reshape(b, c, 64, 64), *out["backbone_fpn"][:2])

        return Encoder().eval()


def export_meta(model: str, checkpoint: str, out: Path) -> dict[str, str]:
    import torch

    written = {}
    sam = meta_model(model, checkpoint)
    x = torch.randn(1, 3, 1024, 1024)
    encoder = _Sam2Encoder.build(sam) if model == "sam2.1_hiera_t" else sam.image_encoder
    path = out / f"{model}.meta.encoder.onnx"
    with torch.no_grad():
        torch.onnx.export(
            encoder, (x,), str(path), dynamo=False, opset_version=17,
            input_names=["image"], output_names=["image_embeddings"],
        )  # fmt: skip
    written["encoder"] = str(path)
    if model == "sam2.1_hiera_t":
        return written  # SAM 2 ships no ONNX decoder wrapper
    if model == "vit_t":
        from mobile_sam.utils.onnx import SamOnnxModel
    else:
        from segment_anything.utils.onnx import SamOnnxModel
    wrapper = SamOnnxModel(sam, return_single_mask=False)
    embed_dim = sam.prompt_encoder.embed_dim
    grid = sam.prompt_encoder.image_embedding_size
    dummy = {
        "image_embeddings": torch.randn(1, embed_dim, *grid),
        "point_coords": torch.randint(0, 1024, (1, 5, 2), dtype=torch.float),
        "point_labels": torch.randint(0, 4, (1, 5), dtype=torch.float),
        "mask_input": torch.randn(1, 1, 4 * grid[0], 4 * grid[1]),
        "has_mask_input": torch.tensor([1], dtype=torch.float),
        "orig_im_size": torch.tensor([1500, 2250], dtype=torch.float),
    }
    path = out / f"{model}.meta.decoder.onnx"
    with torch.no_grad():
        torch.onnx.export(
            wrapper, tuple(dummy.values()), str(path), dynamo=False, opset_version=17,
            do_constant_folding=True, input_names=list(dummy),
            output_names=["masks", "iou_predictions", "low_res_masks"],
            dynamic_axes={"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}},
        )  # fmt: skip
    written["decoder"] = str(path)
    return written


def export_tijeras(model: str, checkpoint: str, out: Path) -> dict[str, str]:
    import tijeras
    from tijeras.export import export_onnx

    name = TIJERAS_NAMES[model]
    loaded = tijeras.load_model(name, checkpoint)
    parts = ["encoder"] if model == "sam2.1_hiera_t" else ["encoder", "decoder"]
    graphs = export_onnx(
        loaded, out, f"{model}.tijeras", parts=parts, original_size=True, quantize=True
    )
    return {g.part + ("-int8" if g.quantized else ""): str(g.path) for g in graphs}


def quantize(paths: dict[str, str]) -> dict[str, str]:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    done = {}
    for part, path in paths.items():
        if part.endswith("-int8"):
            continue
        target = path.replace(".onnx", ".int8.onnx")
        if Path(target).is_file():  # tijeras' export wrote it
            done[part + "-int8"] = target
            continue
        folded = path.replace(".onnx", ".folded.onnx")
        # ONNX Runtime's recommended step before quantising (its constant folding)
        quant_pre_process(path, folded, skip_symbolic_shape=True)
        quantize_dynamic(folded, target, weight_type=QuantType.QInt8)
        Path(folded).unlink()
        done[part + "-int8"] = target
    return done


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sides", default="meta,tijeras")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    result: dict[str, dict[str, str] | str] = {}
    start = time.perf_counter()
    for side, export in (("meta", export_meta), ("tijeras", export_tijeras)):
        if side not in args.sides.split(","):
            continue
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                paths = export(args.model, args.checkpoint, args.out)
            result[side] = paths
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                paths.update(quantize(paths))
        except Exception as exc:  # noqa: BLE001  (a contender that fails is reported, not fatal)
            result[side] = f"export failed: {type(exc).__name__}: {str(exc)[:300]}"
    result["seconds"] = f"{time.perf_counter() - start:.0f}"
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
