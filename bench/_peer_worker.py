"""One contender of the peer benchmark, one model, in its own fresh process: one JSON line out.

    python bench/_peer_worker.py --contender meta+compile --model vit_b --checkpoint W.pth \
        --image truck.jpg --measures encoder,point,batch64,hover [--onnx DIR] [--device cpu]

Run by bench/peers.py; not meant to be run by hand. Contenders (see ``RUNNERS``):

- ``meta``: Meta's package as its README uses it (``segment_anything``, ``mobile_sam``,
  ``sam2``): ``SamPredictor`` / ``SAM2ImagePredictor`` and the automatic mask generator;
  ``+compile`` wraps its image encoder and mask decoder in ``torch.compile``, ``+bf16`` runs
  every call under ``torch.autocast(dtype=torch.bfloat16)`` (on CUDA, ``+compile+bf16`` is
  the segment-anything-fast recipe: bfloat16 weights, ``max-autotune``);
- ``transformers``: ``SamModel`` / ``Sam2Model`` with their processors;
- ``onnxruntime``: the graphs of ``bench/_peer_onnx.py`` under ONNX Runtime, with Meta's
  resize and coordinate transform in numpy (float32, or their int8 quantisation);
- ``tijeras``: the native API (``load_model``, ``Predictor``), float32, bfloat16, ``auto``, and
  tijeras' own ONNX export under ONNX Runtime.

Measures (each after one warm-up call; ``encoder`` and ``point`` take the median of several):
``encoder`` the image encoder with its preprocessing (distinct images), ``point`` a one-point
prompt with three candidates at the original size, ``batch64`` 64 box prompts against one
image, ``hover`` a one-point prompt answered with the best mask at the original size as a
COCO RLE, ``everything`` the automatic mask generator at 32 x 32 points, encoder included.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

POINT = np.array([[500, 375]])
BOX = np.array([425, 600, 700, 875])
TIJERAS_NAMES = {"vit_b": "sam-vit-b", "vit_t": "mobile-sam", "sam2.1_hiera_t": "sam2.1-hiera-tiny"}


class Unsupported(Exception):
    """This contender has no such model or measure (reported as n/a, not as a failure)."""


def boxes64(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 1, size=(64, 2)) * np.array([1300, 800])  # inside the 1500 x 1000 photo
    return np.concatenate([xy, xy + rng.uniform(20, 199, (64, 2))], 1)


def rle(mask: np.ndarray) -> dict:
    from pycocotools import mask as coco

    return coco.encode(np.asfortranarray(mask.astype(np.uint8)))


# ----------------------------------------------------------------------------- Meta


class MetaRunner:
    def __init__(self, args: argparse.Namespace, compile_: bool, bf16: bool) -> None:
        import torch

        self.torch, self.device, self.model_name = torch, args.device, args.model
        self.sam2 = args.model == "sam2.1_hiera_t"
        if self.sam2:
            from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
            from sam2.build_sam import build_sam2
            from sam2.sam2_image_predictor import SAM2ImagePredictor

            config = f"configs/sam2.1/{args.model}.yaml"
            self.model = build_sam2(config, args.checkpoint, device=args.device)
            self.predictor_cls, self.generator_cls = SAM2ImagePredictor, SAM2AutomaticMaskGenerator
            encoder_attr, decoder_attr = "image_encoder", "sam_mask_decoder"
        else:
            lib = __import__("mobile_sam" if args.model == "vit_t" else "segment_anything")
            self.model = lib.sam_model_registry[args.model](checkpoint=args.checkpoint).eval()
            self.model.to(args.device)
            self.predictor_cls, self.generator_cls = lib.SamPredictor, lib.SamAutomaticMaskGenerator
            encoder_attr, decoder_attr = "image_encoder", "mask_decoder"
        cuda = args.device.startswith("cuda")
        if bf16 and compile_ and cuda:  # segment-anything-fast: bfloat16 weights, compiled
            self.model.to(torch.bfloat16)
        if compile_:
            mode = "max-autotune" if cuda else None
            for attr in (encoder_attr, decoder_attr):
                setattr(self.model, attr, torch.compile(getattr(self.model, attr), mode=mode))
        self.autocast = bf16
        self.predictor = self.predictor_cls(self.model)

    def ctx(self):
        if not self.autocast:
            return contextlib.nullcontext()
        device = "cuda" if self.device.startswith("cuda") else "cpu"
        return self.torch.autocast(device, dtype=self.torch.bfloat16)

    def set_image(self, image: np.ndarray) -> None:
        with self.ctx():
            self.predictor.set_image(image)

    def _predict(self, **prompt) -> tuple[np.ndarray, np.ndarray]:
        """``predict`` as Meta's predictor does it, through ``predict_torch`` so that bfloat16
        outputs (autocast, bfloat16 weights) are converted where ``predict`` would fail."""
        with self.ctx():
            if self.sam2:
                masks, scores, _ = self.predictor.predict(multimask_output=True, **prompt)
                return masks > 0.5, scores
            torch, size = self.torch, self.predictor.original_size
            args: dict = {"point_coords": None, "point_labels": None, "boxes": None}
            if "point_coords" in prompt:
                coords = self.predictor.transform.apply_coords(prompt["point_coords"], size)
                args["point_coords"] = torch.as_tensor(coords, dtype=torch.float)[None]
                args["point_labels"] = torch.as_tensor(prompt["point_labels"])[None]
            if "box" in prompt:
                box = self.predictor.transform.apply_boxes(prompt["box"][None], size)
                args["boxes"] = torch.as_tensor(box, dtype=torch.float)
            args = {k: None if v is None else v.to(self.device) for k, v in args.items()}
            masks, scores, _ = self.predictor.predict_torch(**args, multimask_output=True)
        return masks[0].cpu().numpy(), scores[0].float().cpu().numpy()

    def point(self) -> tuple[np.ndarray, np.ndarray]:
        return self._predict(point_coords=POINT, point_labels=np.array([1]))

    def box(self) -> np.ndarray:
        return self._predict(box=BOX)[0]

    def batch64(self) -> None:
        boxes = boxes64()
        with self.ctx():
            if self.sam2:
                self.predictor.predict(box=boxes, multimask_output=True)
                return
            tensor = self.torch.as_tensor(boxes, dtype=self.torch.float, device=self.device)
            tensor = self.predictor.transform.apply_boxes_torch(
                tensor, self.predictor.original_size
            )
            self.predictor.predict_torch(None, None, boxes=tensor, multimask_output=True)

    def hover(self) -> dict:
        masks, scores = self.point()
        return rle(masks[int(np.argmax(scores))])

    def warm_everything(self, image: np.ndarray) -> None:
        """The encoder and the 64-point batches everything mode runs (compiles them)."""
        self.set_image(image)
        if self.sam2:
            return
        points = self.torch.rand(64, 1, 2, device=self.device) * 1000
        labels = self.torch.ones(64, 1, dtype=self.torch.int, device=self.device)
        with self.ctx():
            self.predictor.predict_torch(points, labels, multimask_output=True)

    def everything(self, image: np.ndarray) -> int:
        generator = self.generator_cls(self.model, points_per_side=32, output_mode="coco_rle")
        with self.ctx():
            return len(generator.generate(image))


# ----------------------------------------------------------------------------- transformers


class TransformersRunner:
    def __init__(self, args: argparse.Namespace) -> None:
        import torch
        import transformers as hf

        self.torch, self.device = torch, args.device
        torch.manual_seed(0)
        if args.model == "vit_b":
            self.model = hf.SamModel(hf.SamConfig()).eval().to(args.device)
            self.processor = hf.SamProcessor(hf.SamImageProcessor())
        elif args.model == "sam2.1_hiera_t":
            self.model = hf.Sam2Model(hf.Sam2Config()).eval().to(args.device)
            self.processor = hf.Sam2Processor(hf.Sam2ImageProcessor())
        else:
            raise Unsupported("transformers has no MobileSAM")
        self.sam2 = args.model != "vit_b"

    def set_image(self, image: np.ndarray) -> None:
        inputs = self.processor(images=image, return_tensors="pt").to(self.device)
        self.inputs = inputs
        with self.torch.inference_mode():
            self.embeddings = self.model.get_image_embeddings(inputs["pixel_values"])

    def _decode(self, points=None, labels=None, boxes=None) -> tuple[np.ndarray, np.ndarray]:
        if self.sam2:
            raise Unsupported("only the encoder is measured for SAM 2")
        h, w = self.inputs["original_sizes"][0].tolist()
        scale = 1024 / max(h, w)
        kwargs = {}
        if points is not None:
            kwargs["input_points"] = self.torch.tensor(points * scale, dtype=self.torch.float)
            kwargs["input_labels"] = self.torch.tensor(labels)
        if boxes is not None:
            kwargs["input_boxes"] = self.torch.tensor(boxes * scale, dtype=self.torch.float)
        kwargs = {k: v.to(self.device) for k, v in kwargs.items()}
        with self.torch.inference_mode():
            out = self.model(image_embeddings=self.embeddings, multimask_output=True, **kwargs)
            masks = self.processor.image_processor.post_process_masks(
                out.pred_masks.cpu(),
                self.inputs["original_sizes"].cpu(),
                self.inputs["reshaped_input_sizes"].cpu(),
            )[0]
        return masks.numpy(), out.iou_scores.float().cpu().numpy()

    def point(self) -> tuple[np.ndarray, np.ndarray]:
        masks, scores = self._decode(POINT[None, None].astype(float), np.array([[[1]]]))
        return masks[0], scores[0, 0]

    def box(self) -> np.ndarray:
        return self._decode(boxes=BOX[None, None].astype(float))[0][0]

    def batch64(self) -> None:
        self._decode(boxes=boxes64()[None])

    def hover(self) -> dict:
        masks, scores = self.point()
        return rle(masks[int(np.argmax(scores))])

    def warm_everything(self, image: np.ndarray) -> None:
        self.set_image(image)

    def everything(self, image: np.ndarray) -> int:
        if self.sam2:
            raise Unsupported("only the encoder is measured for SAM 2")
        import transformers as hf
        from PIL import Image

        generator = hf.pipeline(
            "mask-generation",
            model=self.model,
            image_processor=self.processor.image_processor,
            device=self.torch.device(self.device),
        )
        with self.torch.inference_mode():
            out = generator(Image.fromarray(image), points_per_batch=64, points_per_crop=32)
        return len(out["masks"])


# ----------------------------------------------------------------------------- ONNX Runtime


class OrtRunner:
    """Meta's exported decoder and an encoder export, or tijeras' export, under ONNX Runtime."""

    def __init__(self, args: argparse.Namespace, side: str, int8: bool) -> None:
        import onnxruntime as ort

        self.side, self.model_name = side, args.model
        self.sam2 = args.model == "sam2.1_hiera_t"
        suffix = ".int8.onnx" if int8 else ".onnx"
        folder = Path(args.onnx)
        providers = ["CPUExecutionProvider"]
        if args.device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise Unsupported("onnxruntime has no CUDA provider here (onnxruntime-gpu)")
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL

        def session(part: str):
            path = folder / f"{args.model}.{side}.{part}{suffix}"
            if not path.is_file():
                raise Unsupported(f"no {path.name} (its export failed or does not exist)")
            return ort.InferenceSession(str(path), options, providers=providers)

        self.encoder = session("encoder")
        self.decoder = None if self.sam2 else session("decoder")
        self.mean = np.array([123.675, 116.28, 103.53], np.float32)
        self.std = np.array([58.395, 57.12, 57.375], np.float32)

    def set_image(self, image: np.ndarray) -> None:
        from PIL import Image

        h, w = image.shape[:2]
        self.original = (h, w)
        if self.sam2:
            resized = np.asarray(Image.fromarray(image).resize((1024, 1024), Image.BILINEAR))
            x = (resized.astype(np.float32) / 255 - self.mean / 255) / (self.std / 255)
            x = x.transpose(2, 0, 1)[None]
            self.features = self.encoder.run(None, {self.encoder.get_inputs()[0].name: x})
            return
        scale = 1024 / max(h, w)
        self.scale = scale
        size = (int(w * scale + 0.5), int(h * scale + 0.5))
        resized = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
        if self.side == "tijeras":  # the graph normalises and pads itself
            x = resized.astype(np.float32).transpose(2, 0, 1)[None]
        else:
            x = np.zeros((1, 3, 1024, 1024), np.float32)
            x[0, :, : size[1], : size[0]] = ((resized - self.mean) / self.std).transpose(2, 0, 1)
        self.features = self.encoder.run(None, {"image": np.ascontiguousarray(x)})

    def _run(self, coords: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """B x N x 2 original-pixel points and labels -> B x C x H x W logits, B x C scores."""
        if self.sam2:
            raise Unsupported("only the encoder is measured for SAM 2")
        b = coords.shape[0]
        feeds = {
            "image_embeddings": self.features[0],
            "point_coords": (coords * self.scale).astype(np.float32),
            "point_labels": labels.astype(np.float32),
            "mask_input": np.zeros((b, 1, 256, 256), np.float32),
            "has_mask_input": np.zeros(b, np.float32),
        }
        if self.side == "meta":  # Meta's graph: one prompt per call, float original size
            feeds["orig_im_size"] = np.array(self.original, np.float32)
            feeds["has_mask_input"] = np.zeros(1, np.float32)
            feeds["mask_input"] = feeds["mask_input"][:1]
            masks, scores = [], []
            for i in range(b):
                one = dict(feeds, point_coords=feeds["point_coords"][i : i + 1])
                one["point_labels"] = feeds["point_labels"][i : i + 1]
                m, s, _ = self.decoder.run(None, one)
                masks.append(m[:, 1:])  # multimask: tokens 1-3
                scores.append(s[:, 1:])
            return np.concatenate(masks), np.concatenate(scores)
        feeds["orig_im_size"] = np.array(self.original, np.int64)
        iou, _, masks = self.decoder.run(None, feeds)
        return masks, iou

    def _with_pad(self, coords: np.ndarray, labels: np.ndarray):
        b = coords.shape[0]
        return (
            np.concatenate([coords, np.zeros((b, 1, 2))], 1),
            np.concatenate([labels, -np.ones((b, 1))], 1),
        )

    def point(self) -> tuple[np.ndarray, np.ndarray]:
        masks, scores = self._run(*self._with_pad(POINT[None].astype(float), np.ones((1, 1))))
        return masks[0] > 0, scores[0]

    def box(self) -> np.ndarray:
        corners = BOX.reshape(1, 2, 2).astype(float)
        return self._run(corners, np.array([[2, 3]]))[0][0] > 0

    def batch64(self) -> None:
        corners = boxes64().reshape(64, 2, 2)
        masks, _ = self._run(corners, np.tile(np.array([[2, 3]]), (64, 1)))
        masks > 0  # noqa: B015  (the masks are the product, as for the other contenders)

    def hover(self) -> dict:
        masks, scores = self.point()
        return rle(masks[int(np.argmax(scores))])

    def warm_everything(self, image: np.ndarray) -> None:
        self.set_image(image)

    def everything(self, image: np.ndarray) -> int:
        """Encoder and the 1024 grid points in batches of 64, masks thresholded: a lower bound
        of an everything mode on this runtime (no IoU or stability filter, no NMS)."""
        self.set_image(image)
        h, w = image.shape[:2]
        grid = (np.arange(32) + 0.5) / 32
        points = np.stack(np.meshgrid(grid * w, grid * h), -1).reshape(-1, 1, 2)
        kept = 0
        for i in range(0, len(points), 64):
            masks, _ = self._run(*self._with_pad(points[i : i + 64], np.ones((64, 1))))
            kept += int((masks > 0).any(axis=(-1, -2)).sum())
        return kept


# ----------------------------------------------------------------------------- tijeras


class TijerasRunner:
    def __init__(self, args: argparse.Namespace, dtype: str) -> None:
        import torch

        import tijeras
        from tijeras.engine.prompts import validate_prompts

        self.torch, self.tijeras, self.validate = torch, tijeras, validate_prompts
        name = TIJERAS_NAMES[args.model]
        self.model = tijeras.load_model(name, args.checkpoint, device=args.device, dtype=dtype)
        self.predictor = tijeras.Predictor(self.model, cache_size=0)

    def set_image(self, image: np.ndarray) -> None:
        self.predictor.set_image(image)

    def point(self) -> tuple[np.ndarray, np.ndarray]:
        pred = self.predictor.predict(point_coords=POINT, point_labels=np.array([1]))
        return pred.masks, pred.scores

    def box(self) -> np.ndarray:
        return self.predictor.predict(box=BOX).masks

    def batch64(self) -> None:
        self.predictor.predict(box=boxes64())

    def hover(self) -> dict:
        """The web app's hover path: masks-only decode, the best candidate upscaled."""
        emb = self.predictor.embedding
        prompts = self.validate(
            POINT, np.array([1]), None, None, emb.original_size, self.predictor.spec
        )
        masks, _ = self.predictor.best_mask(
            self.predictor.to_input_frame(prompts), emb.original_size
        )
        return rle(masks[0].cpu().numpy())

    def warm_everything(self, image: np.ndarray) -> None:
        self.set_image(image)

    def everything(self, image: np.ndarray) -> int:
        generator = self.tijeras.SamAutomaticMaskGenerator(
            self.model, points_per_side=32, output_mode="coco_rle"
        )
        return len(generator.generate(image))


RUNNERS = {
    "meta": lambda a: MetaRunner(a, False, False),
    "meta+jemalloc": lambda a: MetaRunner(a, False, False),  # LD_PRELOAD set by peers.py
    "meta+compile": lambda a: MetaRunner(a, True, False),
    "meta+bf16": lambda a: MetaRunner(a, False, True),
    "meta+compile+bf16": lambda a: MetaRunner(a, True, True),
    "transformers": TransformersRunner,
    "onnxruntime": lambda a: OrtRunner(a, "meta", False),
    "onnxruntime-int8": lambda a: OrtRunner(a, "meta", True),
    "tijeras": lambda a: TijerasRunner(a, "float32"),
    "tijeras-auto": lambda a: TijerasRunner(a, "auto"),
    "tijeras-bf16": lambda a: TijerasRunner(a, "bfloat16"),
    "tijeras-onnx": lambda a: OrtRunner(a, "tijeras", False),
    "tijeras-onnx-int8": lambda a: OrtRunner(a, "tijeras", True),
}


def timed(fn, repeat: int, sync) -> float:
    """Median wall time of ``repeat`` calls in milliseconds, after one warm-up call."""
    fn()
    sync()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def images(path: str) -> list[np.ndarray]:
    from PIL import Image

    image = np.array(Image.open(path).convert("RGB").resize((1500, 1000)))
    flips = [image, image[:, ::-1], image[::-1], image[::-1, ::-1]]
    return [np.ascontiguousarray(x) for x in flips]


def measure(runner, args: argparse.Namespace, sync) -> dict:
    pics = images(args.image)
    out: dict = {}
    wanted = args.measures.split(",")
    if "everything" in wanted:
        runner.warm_everything(pics[1])
        sync()
        start = time.perf_counter()
        out["everything_masks"] = runner.everything(pics[0])
        sync()
        out["everything_s"] = time.perf_counter() - start
        return out
    start = time.perf_counter()
    runner.set_image(pics[1])
    sync()
    out["encoder_first_s"] = time.perf_counter() - start
    times = []
    for pic in pics[2:] + pics[:1]:
        start = time.perf_counter()
        runner.set_image(pic)
        sync()
        times.append(time.perf_counter() - start)
    out["encoder_s"] = statistics.median(times)
    for name, fn, repeat in (
        ("point_ms", runner.point, args.repeat),
        ("hover_ms", runner.hover, args.repeat),
        ("batch64_ms", runner.batch64, 3),
    ):
        key = name.split("_")[0]
        if key not in wanted:
            continue
        try:
            out[name] = timed(fn, repeat, sync)
        except Unsupported as exc:
            out[name + "_na"] = str(exc)
    if args.save_masks and "point" in wanted:
        try:
            point_masks, _ = runner.point()
            np.savez_compressed(args.save_masks, point=point_masks, box=runner.box())
        except Unsupported:
            pass
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contender", choices=sorted(RUNNERS), required=True)
    parser.add_argument("--model", default="vit_b", choices=sorted(TIJERAS_NAMES))
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--measures", default="encoder,point,batch64,hover")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--onnx", default="")
    parser.add_argument("--save-masks", default=None)
    args = parser.parse_args()

    start = time.perf_counter()
    import torch

    torch.set_num_threads(args.threads)

    def sync() -> None:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    result = {"contender": args.contender, "model": args.model}
    try:
        runner = RUNNERS[args.contender](args)
        result["load_s"] = time.perf_counter() - start
        with torch.inference_mode():
            result.update(measure(runner, args, sync))
    except Unsupported as exc:
        result["unsupported"] = str(exc)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.device.startswith("cuda"):
        result["gpu"] = torch.cuda.get_device_name()
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
