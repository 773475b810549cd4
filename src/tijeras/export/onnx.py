"""ONNX export of the image encoder and the prompt decoder, each checked under ONNX Runtime.

:func:`export_onnx` writes ``<name>.encoder.onnx`` and ``<name>.decoder.onnx`` (see
:mod:`.graphs` for their inputs and outputs), optionally an int8 dynamic quantisation of each
(``<name>.encoder.int8.onnx``), and runs every float32 graph under ONNX Runtime against the
model's own PyTorch path (the predictor's) on example inputs: embeddings and logits within
:data:`REL_TOL` of the largest magnitude, masks equal except pixels whose logit is within
:data:`LOGIT_BAND` of the threshold. A graph that fails the check raises
:class:`~tijeras.errors.TijerasError`, so a bad file is never presented as good.

Needs the ``onnx``, ``onnxscript`` and ``onnxruntime`` packages (the ``export`` extra).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import TijerasError
from ..types import ImageEmbedding, PromptBatch
from .graphs import DecoderGraph, EncoderGraph, pads_itself

REL_TOL = 1e-4  # the parity tolerance of the test suite (tests/helpers/parity.py)
LOGIT_BAND = 1e-4
PARTS = ("encoder", "decoder")
PROTOBUF_LIMIT = 1_800_000_000  # bytes of weights above which they go to a .data file


@dataclass(frozen=True)
class ExportedGraph:
    """One written graph and how it compared with PyTorch under ONNX Runtime.

    Attributes:
        part: ``"encoder"`` or ``"decoder"``.
        path: the ``.onnx`` file.
        inputs, outputs: the graph's input and output names, in order.
        max_error: largest difference from PyTorch, relative to the largest magnitude (float32
            graphs), or None when not checked.
        mask_iou: for an int8 graph, the lowest IoU of its masks with PyTorch's float32 masks
            (the decoder), or None.
        quantized: True for an int8 dynamic quantisation.
    """

    part: str
    path: Path
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    max_error: float | None = None
    mask_iou: float | None = None
    quantized: bool = False


def require_onnx() -> Any:
    """Import ``onnxruntime``, or raise one error naming the packages to install."""
    try:
        import onnx  # noqa: F401
        import onnxruntime
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise TijerasError(
            f"ONNX export needs the onnx, onnxscript and onnxruntime packages ({exc.name} is "
            "missing): pip install 'tijeras[export]'"
        ) from None
    return onnxruntime


def export_onnx(
    model: nn.Module,
    out_dir: str | Path,
    name: str,
    *,
    parts: Sequence[str] = PARTS,
    multimask: bool = True,
    original_size: bool = False,
    quantize: bool = False,
    opset: int | None = None,
    verify: bool = True,
    optimize: bool = True,
) -> list[ExportedGraph]:
    """Export a float32 SAM-style model's encoder and/or decoder to ONNX files in ``out_dir``.

    Args:
        model: a model from :func:`tijeras.load_model` (SAM, MobileSAM, SAM 2), float32.
        name: file name stem (``sam-vit-b`` -> ``sam-vit-b.encoder.onnx``).
        parts: ``"encoder"``, ``"decoder"`` or both.
        multimask: the decoder returns the three candidates (else the single mask).
        original_size: the decoder also takes ``orig_im_size`` and returns ``masks``, the
            logits at the original image size.
        quantize: also write an int8 dynamic quantisation of each graph.
        opset: ONNX opset (default: the exporter's).
        verify: run each graph under ONNX Runtime and compare with PyTorch (raises on failure).
        optimize: simplify the graph (constant folding, fusions) after export; without it the
            export takes about half the time and ONNX Runtime still optimises when it loads.
    """
    require_onnx()
    unknown = set(parts) - set(PARTS)
    if unknown or not parts:
        raise TijerasError(f"parts must be among {', '.join(PARTS)}, got {list(parts)}")
    dtypes = {p.dtype for p in model.parameters()}
    if dtypes != {torch.float32}:
        raise TijerasError(
            f"export needs a float32 model, got {sorted(str(d) for d in dtypes)}: load it with "
            "dtype='float32'"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    examples = _Examples(model)
    settings = {"opset": opset, "optimize": optimize}
    written = []
    if "encoder" in parts:
        written += _export_encoder(model, examples, out / f"{name}.encoder.onnx", settings, verify)
    if "decoder" in parts:
        path = out / f"{name}.decoder.onnx"
        graph = DecoderGraph(
            model, examples.extra_names, multimask=multimask, original_size=original_size
        )
        written += _export_decoder(graph, examples, path, settings, verify)
    if quantize:
        written += [_quantize(g, examples, verify) for g in list(written)]
    _write_manifest(out / f"{name}.onnx.json", model, name, written, multimask, original_size)
    return written


class _Examples:
    """Example inputs and the PyTorch outputs the graphs are checked against."""

    def __init__(self, model: nn.Module) -> None:
        spec = model.input_spec
        s = spec.image_size
        self.model = model
        gen = torch.Generator().manual_seed(0)
        if spec.resize == "square":
            self.original_size, self.input_size = (600, 800), (s, s)
        else:  # a 3:4 photo: the padding and the crop are exercised
            self.original_size, self.input_size = (600, 800), (s * 3 // 4, s)
        h, w = self.input_size
        self.image = torch.rand(1, 3, h, w, generator=gen) * 255
        with torch.inference_mode():
            x = model.preprocess(self.image).to(model.encoder_dtype)
            self.features, self.extra = model.encode_image(x)
        self.extra_names = tuple(sorted(self.extra))
        self.embedding = ImageEmbedding(
            features=self.features,
            original_size=self.original_size,
            input_size=self.input_size,
            model_name=name_of(model),
            extra=self.extra,
        )
        # B = 2 prompts of N = 3 points (sizes above 1, so the exporter keeps them dynamic)
        b, n = 2, 3
        self.coords = torch.rand(b, n, 2, generator=gen) * torch.tensor([w - 1.0, h - 1.0])
        self.labels = torch.tensor([[1, 0, 1], [1, 1, 0]], dtype=torch.int64)
        grid = spec.mask_input_size
        self.mask = torch.randn(b, 1, *grid, generator=gen) * 4


def name_of(model: nn.Module) -> str:
    return str(getattr(model, "name", type(model).__name__))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter and the quantiser report their steps on stdout, as warnings and as log
    records; keep the caller's output clean."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def _onnx_export(module: nn.Module, args: tuple, path: Path, names: dict, settings: dict) -> None:
    params = sum(p.numel() * p.element_size() for p in module.parameters())
    module.eval()
    with _quiet(), torch.no_grad():
        program = torch.onnx.export(
            module,
            args,
            dynamo=True,
            input_names=names["inputs"],
            output_names=names["outputs"],
            dynamic_shapes=names["dynamic"],
            opset_version=settings["opset"],
            optimize=settings["optimize"],
        )
        program.save(str(path), external_data=params > PROTOBUF_LIMIT)


def _session(path: Path) -> Any:
    ort = require_onnx()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _rel_error(ours: np.ndarray, ref: torch.Tensor) -> float:
    ref_np = ref.detach().float().numpy().astype(np.float64)
    scale = max(float(np.abs(ref_np).max()), 1e-12)
    return float(np.abs(ours.astype(np.float64) - ref_np).max() / scale)


def _export_encoder(
    model: nn.Module, ex: _Examples, path: Path, settings: dict, verify: bool
) -> list[ExportedGraph]:
    graph = EncoderGraph(model, ex.extra_names)
    spec = model.input_spec
    outputs = ("image_embeddings", *ex.extra_names)
    dynamic = None
    if spec.resize != "square":
        s = spec.image_size
        dims = {2: torch.export.Dim("height", min=2, max=s), 3: torch.export.Dim("width", max=s)}
        dynamic = {"image": dims}
    names = {"inputs": ["image"], "outputs": list(outputs), "dynamic": dynamic}
    _onnx_export(graph, (ex.image,), path, names, settings)
    error = None
    if verify:
        got = _session(path).run(None, {"image": ex.image.numpy()})
        refs = [ex.features, *(ex.extra[k] for k in ex.extra_names)]
        error = max(_rel_error(g, r) for g, r in zip(got, refs))
        if error > REL_TOL:
            raise TijerasError(f"{path.name}: differs from PyTorch by {error:.3g} (> {REL_TOL})")
    return [ExportedGraph("encoder", path, ("image",), outputs, max_error=error)]


def _decoder_inputs(graph: DecoderGraph, ex: _Examples, coords, labels, has: float) -> dict:
    b = coords.shape[0]
    feeds = {"image_embeddings": ex.features.float()}
    feeds.update({k: ex.extra[k].float() for k in ex.extra_names})
    feeds["point_coords"] = coords.float()
    feeds["point_labels"] = labels.float()
    feeds["mask_input"] = ex.mask.float()
    feeds["has_mask_input"] = torch.full((b,), has)
    if graph.original_size:
        feeds["orig_im_size"] = torch.tensor(ex.original_size, dtype=torch.int64)
    return feeds


def _graph_points(graph: DecoderGraph, coords: torch.Tensor, labels: torch.Tensor):
    """The points as the graph takes them: SAM's with the caller's padding point."""
    if pads_itself(graph.model):
        return coords, labels
    b = coords.shape[0]
    coords = torch.cat([coords, coords.new_zeros(b, 1, 2)], dim=1)
    return coords, torch.cat([labels, labels.new_full((b, 1), -1)], dim=1)


def _decoder_outputs(graph: DecoderGraph) -> list[str]:
    names = ["iou_predictions", "low_res_masks"]
    if graph.original_size:
        names.append("masks")
    if graph.sam2:
        names.append("object_scores")
    return names


def _reference(graph: DecoderGraph, ex: _Examples, with_mask: bool) -> list[torch.Tensor]:
    """The predictor's outputs for the example prompts (the contract's fast decoder)."""
    model = graph.model
    prompts = PromptBatch(points=ex.coords, labels=ex.labels, masks=ex.mask if with_mask else None)
    with torch.inference_mode():
        decoded = model.decode(model.prepare(ex.embedding), prompts, multimask=graph.multimask)
        refs = [decoded.iou_scores, decoded.low_res_logits]
        if graph.original_size:
            refs.append(
                model.postprocess_masks(decoded.low_res_logits, ex.input_size, ex.original_size)
            )
        if graph.sam2:
            refs.append(decoded.object_scores)
    return refs


def _export_decoder(
    graph: DecoderGraph, ex: _Examples, path: Path, settings: dict, verify: bool
) -> list[ExportedGraph]:
    coords, labels = _graph_points(graph, ex.coords, ex.labels)
    feeds = _decoder_inputs(graph, ex, coords, labels, 1.0)
    prompts, points = torch.export.Dim("prompts"), torch.export.Dim("points")
    dynamic: dict[str, Any] = {"image_embeddings": None}
    dynamic.update({k: None for k in ex.extra_names})
    dynamic["point_coords"] = {0: prompts, 1: points}
    dynamic["point_labels"] = {0: prompts, 1: points}
    dynamic["mask_input"] = {0: prompts}
    dynamic["has_mask_input"] = {0: prompts}
    if graph.original_size:
        dynamic["orig_im_size"] = None
    names = {
        "inputs": list(feeds),
        "outputs": _decoder_outputs(graph),
        # forward(image_embeddings, *inputs): the varargs form one nested entry
        "dynamic": (None, tuple(list(dynamic.values())[1:])),
    }
    _onnx_export(graph, tuple(feeds.values()), path, names, settings)
    error = None
    if verify:
        session = _session(path)
        error = 0.0
        for with_mask in (False, True):
            feeds = _decoder_inputs(graph, ex, coords, labels, float(with_mask))
            got = session.run(None, {k: v.numpy() for k, v in feeds.items()})
            refs = _reference(graph, ex, with_mask)
            error = max([error] + [_rel_error(g, r) for g, r in zip(got, refs)])
            _check_masks(path, got[1], refs[1], model_threshold(graph.model))
        if error > REL_TOL:
            raise TijerasError(f"{path.name}: differs from PyTorch by {error:.3g} (> {REL_TOL})")
    outputs = tuple(names["outputs"])
    return [ExportedGraph("decoder", path, tuple(names["inputs"]), outputs, max_error=error)]


def model_threshold(model: nn.Module) -> float:
    return float(model.input_spec.mask_threshold)


def _check_masks(path: Path, got: np.ndarray, ref: torch.Tensor, threshold: float) -> None:
    ref_np = ref.float().numpy()
    differ = (got > threshold) != (ref_np > threshold)
    near = np.abs(ref_np - threshold) <= LOGIT_BAND
    bad = int((differ & ~near).sum())
    if bad:
        raise TijerasError(f"{path.name}: {bad} mask pixels differ from PyTorch")


def _quantize(graph: ExportedGraph, ex: _Examples, verify: bool) -> ExportedGraph:
    """int8 dynamic quantisation (weights int8, activations quantised at run time)."""
    require_onnx()
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    path = graph.path.with_suffix(".int8.onnx")
    folded = graph.path.with_suffix(".folded.onnx")
    try:
        with _quiet():
            # constant folding first: weights computed in the graph (batch norms folded into
            # convolutions) become the initializers the quantiser needs
            quant_pre_process(str(graph.path), str(folded), skip_symbolic_shape=True)
            quantize_dynamic(str(folded), str(path), weight_type=QuantType.QInt8)
    finally:
        folded.unlink(missing_ok=True)
    iou = None
    if verify and graph.part == "decoder":
        iou = _int8_mask_iou(graph, path)
    return ExportedGraph(
        graph.part, path, graph.inputs, graph.outputs, mask_iou=iou, quantized=True
    )


def _int8_mask_iou(graph: ExportedGraph, path: Path) -> float:
    """Lowest IoU of the int8 decoder's low-res masks with the float32 graph's, one example."""
    fp32, int8 = _session(graph.path), _session(path)
    gen = np.random.default_rng(0)
    feeds = {}
    for meta in fp32.get_inputs():
        shape = [d if isinstance(d, int) else 2 for d in meta.shape]
        kind = np.int64 if "int64" in meta.type else np.float32
        feeds[meta.name] = gen.uniform(0, 1, shape).astype(kind)
    if "orig_im_size" in feeds:
        feeds["orig_im_size"] = np.array([600, 800], dtype=np.int64)
    if "point_labels" in feeds:
        feeds["point_labels"] = np.ones_like(feeds["point_labels"])
        feeds["point_coords"] = feeds["point_coords"] * 512
    a = fp32.run(["low_res_masks"], feeds)[0] > 0
    b = int8.run(["low_res_masks"], feeds)[0] > 0
    inter = (a & b).reshape(a.shape[0] * a.shape[1], -1).sum(-1)
    union = (a | b).reshape(a.shape[0] * a.shape[1], -1).sum(-1)
    return float(np.min(np.where(union > 0, inter / np.maximum(union, 1), 1.0)))


def _write_manifest(
    path: Path,
    model: nn.Module,
    name: str,
    graphs: list[ExportedGraph],
    multimask: bool,
    original_size: bool,
) -> None:
    """A JSON file beside the graphs: what they take, the conventions, how they checked."""
    spec = model.input_spec
    convention = (
        "SAM 2: the graph appends the padding point itself; give box corners (labels 2, 3) "
        "before the points"
        if pads_itself(model)
        else "SAM: append a padding point (0, 0) with label -1 to prompts without a box"
    )
    manifest = {
        "model": name,
        "image_size": spec.image_size,
        "resize": spec.resize,
        "mask_threshold": spec.mask_threshold,
        "multimask": multimask,
        "original_size": original_size,
        "coordinates": "xy in the resized input frame (see resize)",
        "labels": "1 foreground, 0 background, 2 / 3 box corners, -1 padding",
        "padding": convention,
        "graphs": [
            {k: (str(v.name) if isinstance(v, Path) else v) for k, v in asdict(g).items()}
            for g in graphs
        ],
    }
    path.write_text(json.dumps(manifest, indent=2) + "\n")
