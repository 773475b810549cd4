"""Concept prompts on the command line (SAM 3), and ``tijeras mcp``.

``tijeras segment IMAGE --text PHRASE [--out DIR]`` finds every instance of a phrase (or of
``--exemplar`` boxes) and writes, in ``DIR``, one 0/255 PNG per instance
(``<phrase>_<i>.png``, best first) and ``<image stem>.json``, a COCO dataset with one category
per phrase. ``tijeras everything FOLDER --text car --text person --out DIR`` labels a folder by
concepts with everything mode's files and resumable folder semantics: :class:`ConceptLabeller`
stands in for the mask generator, and :func:`coco_document` / :func:`yolo_lines` give each
phrase its own category (COCO) or class index (YOLO, in the order of the ``--text`` flags).

A concept needs a model whose family takes text prompts; when ``--model`` is not given the
command takes ``sam3``. The rest of this module is torch-free at import, as the CLI is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tijeras.cli.common import (
    DeviceOption,
    _check_image_suffix,
    _describe_mask,
    _fail,
    _parse_numbers,
    _user_errors,
    app,
)

if TYPE_CHECKING:
    import numpy as np

    from tijeras.types import Instances

TEXT_FAMILIES = frozenset({"sam3"})
"""Families whose models list ``"text"`` in their ``InputSpec.prompt_kinds`` (known here
without building a model; ``tests/cli/test_cli_text.py`` holds it equal to the built models)."""
TEXT_MODEL = "sam3"
"""The model a concept command takes when ``--model`` is not given."""
DEFAULT_THRESHOLD = 0.5

TextOption = Annotated[
    list[str] | None,
    typer.Option(
        "--text",
        "-t",
        metavar="PHRASE",
        help="Find every instance of a noun phrase (repeatable; a SAM 3 model, default sam3).",
    ),
]
ExemplarOption = Annotated[
    list[str] | None,
    typer.Option(
        "--exemplar",
        metavar="X0,Y0,X1,Y1",
        help="A box around one example of the concept: finds every instance like it (repeatable).",
    ),
]
NegExemplarOption = Annotated[
    list[str] | None,
    typer.Option(
        "--neg-exemplar",
        metavar="X0,Y0,X1,Y1",
        help="A box around a counter-example, to exclude things like it (repeatable).",
    ),
]
ThresholdOption = Annotated[
    float,
    typer.Option(
        "--text-threshold",
        min=0.0,
        max=1.0,
        help="Keep the instances of a phrase scoring above this (0-1).",
    ),
]


# ----------------------------------------------------------------------------- shared checks


def concept_model(ctx: typer.Context, model_name: str) -> str:
    """The model of a concept command: ``--model`` when given (it must take text prompts),
    else :data:`TEXT_MODEL`. One ``error:`` line for a model without text prompts."""
    from tijeras.catalog import get_spec

    source = ctx.get_parameter_source("model")
    if source is None or source.name in ("DEFAULT", "DEFAULT_MAP"):
        model_name = TEXT_MODEL
    with _user_errors():
        spec = get_spec(model_name)
    if spec.family not in TEXT_FAMILIES:
        takes = ", ".join(n for n in _text_models())
        _fail(
            f"--text needs a model that takes text prompts ({takes}); --model {model_name} does not"
        )
    return spec.name


def _text_models() -> list[str]:
    from tijeras.catalog import REGISTRY

    return [n for n in REGISTRY.names() if REGISTRY.get(n).family in TEXT_FAMILIES]


def check_phrases(phrases: Sequence[str], model_name: str | None = None) -> list[str]:
    """The phrases, each non-blank and, for a SAM 3 model, within its tokenizer's context
    length (checked before any image is encoded, so a folder run fails once, not per image)."""
    chosen = []
    for phrase in phrases:
        if not phrase.strip():
            _fail("--text: an empty phrase; give a noun phrase such as --text 'red car'")
        if phrase in chosen:
            _fail(f"--text {phrase!r} is given twice")
        chosen.append(phrase)
    if chosen and model_name is not None:
        _check_tokens(chosen, model_name)
    return chosen


def _check_tokens(phrases: Sequence[str], model_name: str) -> None:
    from tijeras.catalog import get_spec

    spec = get_spec(model_name)
    if spec.family != "sam3":
        return
    from tijeras.models.sam3.tokenizer import ClipTokenizer

    with _user_errors():
        tokenizer = ClipTokenizer(None, spec.config.text.context_length)
        for phrase in phrases:
            tokenizer.encode(phrase)


def slug(phrase: str) -> str:
    """A file-name-safe form of a phrase: ``"red car"`` -> ``"red_car"``."""
    text = re.sub(r"[^0-9A-Za-z]+", "_", phrase).strip("_").lower()
    return text[:40] or "concept"


# ----------------------------------------------------------------------------- segment --text


@dataclass(frozen=True)
class ConceptRequest:
    """What ``tijeras segment`` was asked when a concept flag is given."""

    image: str
    phrases: tuple[str, ...]
    exemplars: tuple[str, ...]
    neg_exemplars: tuple[str, ...]
    threshold: float
    out: Path | None
    overlay: Path | None
    model: str
    checkpoint: Path | None
    device: str
    dtype: str
    cache: Path | None


def is_concept_request(
    text: Sequence[str] | None, exemplar: Sequence[str] | None, neg: Sequence[str] | None
) -> bool:
    """Whether ``tijeras segment`` was given a concept flag."""
    return bool(text or exemplar or neg)


def check_segment_flags(
    points: Sequence[str] | None,
    box: str | None,
    multimask: bool,
    single_object_outputs: Mapping[str, Path | None],
) -> None:
    """One ``error:`` line for click flags given together with concept flags
    (``single_object_outputs``: flag -> path of the outputs made for one object)."""
    if points or box is not None:
        _fail(
            "--text/--exemplar find every instance of a concept; --point and --box segment one "
            "object: give one kind per call"
        )
    if multimask:
        _fail("--multimask applies to --point/--box; --text writes every instance to --out")
    for flag, path in single_object_outputs.items():
        if path is not None:
            _fail(f"{flag} applies to one object; with --text the masks are written to --out DIR")


def segment_concepts(request: ConceptRequest) -> None:
    """``tijeras segment --text``: find, print and write the instances of each phrase."""
    phrases = check_phrases(request.phrases, request.model)
    boxes = [_parse_numbers("--exemplar", b, 4, "X0,Y0,X1,Y1") for b in request.exemplars]
    boxes += [_parse_numbers("--neg-exemplar", b, 4, "X0,Y0,X1,Y1") for b in request.neg_exemplars]
    labels = [1] * len(request.exemplars) + [0] * len(request.neg_exemplars)
    if boxes and not any(labels) and not phrases:
        _fail("--neg-exemplar alone finds nothing: add --text or an --exemplar box")
    if request.overlay is not None:
        _check_image_suffix("--overlay", request.overlay)
    if request.out is not None and request.out.exists() and not request.out.is_dir():
        _fail(f"--out {str(request.out)!r} exists and is not a folder (with --text it is one)")

    import torch

    from tijeras import Predictor
    from tijeras.cli.common import model_builder
    from tijeras.engine.prompts import validate_prompts
    from tijeras.io import load_image

    rgb = load_image(request.image)
    if boxes:  # outside the image or reversed: refused before the encoder runs
        validate_prompts(None, None, boxes, None, rgb.shape[:2], None)
    build = model_builder(
        request.model, request.checkpoint, request.device, request.dtype, request.cache
    )
    found: list[Instances] = []
    try:
        predictor = Predictor(build(), cache_size=0)
        predictor.set_image(rgb)
        for phrase in phrases or [None]:
            found.append(
                predictor.segment_concept(
                    phrase, boxes or None, labels or None, threshold=request.threshold
                )
            )
    except torch.OutOfMemoryError:
        _fail(f"out of memory on {request.device}: try --device cpu")
    _report(found)
    if request.out is not None:
        _write_instances(rgb, found, Path(request.image).name, request.out)
    if request.overlay is not None:
        from tijeras.io import overlay, save_image

        masks = [m for instances in found for m in instances.masks]
        save_image(overlay(rgb, masks) if masks else rgb.copy(), request.overlay)
        typer.echo(f"wrote {request.overlay} (overlay, {len(masks)} instances)")


def _name(instances: Instances) -> str:
    return instances.text if instances.text is not None else "exemplar"


def _report(found: Sequence[Instances]) -> None:
    for instances in found:
        name = _name(instances)
        typer.echo(
            f"{name!r}: {len(instances)} instance{'s' * (len(instances) != 1)} "
            f"(presence {instances.presence:.3f})"
        )
        for i, (mask, score) in enumerate(zip(instances.masks, instances.scores)):
            typer.echo(f"  {i}: score {float(score):.3f}  {_describe_mask(mask)}")


def _write_instances(
    rgb: np.ndarray, found: Sequence[Instances], file_name: str, out: Path
) -> None:
    from tijeras.io import coco_rle_one, save_mask_png, write_coco

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _fail(f"cannot create --out folder {str(out)!r}: {exc.strerror or exc}")
    categories = [_name(instances) for instances in found]
    records = []
    for k, instances in enumerate(found):
        digits = max(3, len(str(len(instances) - 1)))
        for i, (mask, score) in enumerate(zip(instances.masks, instances.scores)):
            save_mask_png(mask, out / f"{slug(categories[k])}_{i:0{digits}d}.png")
            records.append(
                {
                    "segmentation": coco_rle_one(mask),
                    "predicted_iou": float(score),
                    "category_id": k + 1,
                }
            )
    height, width = rgb.shape[:2]
    target = out / f"{Path(file_name).stem}.json"
    write_coco(coco_document(records, 1, file_name, height, width, categories), target)
    typer.echo(f"wrote {len(records)} mask PNGs and {target} to {out}")


# ----------------------------------------------------------------------------- everything --text


class ConceptLabeller:
    """Everything mode by concepts: ``generate(image)`` returns one record per instance of each
    phrase, in everything mode's record layout (``segmentation`` as a compressed COCO RLE,
    ``area``, ``bbox`` XYWH of the mask, ``predicted_iou`` = the concept score) plus
    ``category`` (the phrase) and ``category_id`` (1-based, in phrase order);
    ``stability_score`` is None (concept instances have none).

    Args:
        model: a model whose family takes text prompts.
        phrases: the concepts, one category each.
        threshold: instances scoring above it are kept.
    """

    def __init__(self, model: Any, phrases: Sequence[str], threshold: float) -> None:
        from tijeras import Predictor

        self.predictor = Predictor(model, cache_size=0)
        self.categories = tuple(phrases)
        self.threshold = threshold
        self.progress: Callable[[int, int], None] | None = None

    def generate(self, image: np.ndarray) -> list[dict[str, Any]]:
        """The records of every phrase's instances in an H x W x 3 uint8 image."""
        from tijeras.io import coco_rle

        self.predictor.set_image(image)
        records: list[dict[str, Any]] = []
        for k, phrase in enumerate(self.categories):
            found = self.predictor.segment_text(phrase, threshold=self.threshold)
            for mask, rle, score in zip(found.masks, coco_rle(found.masks), found.scores):
                records.append(_record(mask, rle, float(score), phrase, k + 1))
            if self.progress is not None:
                self.progress(k + 1, len(self.categories))
        return records


def _record(
    mask: np.ndarray, rle: dict[str, Any], score: float, phrase: str, category_id: int
) -> dict[str, Any]:
    from tijeras.io import mask_to_box

    box = mask_to_box(mask)
    x0, y0, x1, y1 = box if box is not None else (0, 0, 0, 0)
    return {
        "segmentation": rle,
        "area": int(mask.sum()),
        "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
        "predicted_iou": score,
        "stability_score": None,
        "category": phrase,
        "category_id": category_id,
    }


def check_everything_flags(options: Mapping[str, Any], tile: int | None) -> None:
    """One ``error:`` line for everything-mode flags that do not apply to ``--text``."""
    given = [name for name, value in options.items() if value is not None]
    if given:
        flag = "--" + given[0].replace("_", "-")
        _fail(f"{flag} is an option of the point grid; it does not apply to --text")
    if tile is not None:
        _fail("--tile is not supported with --text (SAM 3 sees the whole image at 1008 px)")


def concept_loader(
    phrases: Sequence[str],
    threshold: float,
    model_name: str,
    checkpoint: Path | None,
    device: str,
    dtype: str,
    cache: Path | None,
) -> Callable[[], ConceptLabeller]:
    """Check the phrases, model, weights and device now; return a function building the
    :class:`ConceptLabeller` once, on first use (as everything mode's model loader)."""
    from tijeras.cli.common import model_builder

    chosen = check_phrases(phrases, model_name)
    if checkpoint is not None and not checkpoint.is_file():
        _fail(f"--checkpoint {str(checkpoint)!r}: no such file")
    build = model_builder(model_name, checkpoint, device, dtype, cache)
    built: list[ConceptLabeller] = []

    def load() -> ConceptLabeller:
        if not built:
            built.append(ConceptLabeller(build(), chosen, threshold))
        return built[0]

    return load


def coco_document(
    records: Sequence[Mapping[str, Any]],
    image_id: int,
    file_name: str,
    height: int,
    width: int,
    categories: Sequence[str] | None,
) -> dict[str, Any]:
    """:func:`tijeras.io.coco_dataset`, with one category per phrase when ``categories`` is
    given (each record's ``category_id``, 1-based, names its phrase)."""
    from tijeras.io import coco_dataset

    plain = [{k: v for k, v in r.items() if v is not None} for r in records]
    dataset = coco_dataset(plain, image_id, file_name, height, width)
    if categories is None:
        return dataset
    for annotation, record in zip(dataset["annotations"], records):
        annotation["category_id"] = int(record["category_id"])
    dataset["categories"] = [
        {"id": i + 1, "name": phrase, "supercategory": "concept"}
        for i, phrase in enumerate(categories)
    ]
    return dataset


def yolo_lines(
    records: Sequence[Mapping[str, Any]],
    height: int,
    width: int,
    tolerance: float,
    categories: Sequence[str] | None,
) -> list[str]:
    """YOLO segmentation lines; with ``categories`` each line's class is its phrase's index."""
    from tijeras.io.yolo import yolo_segmentation_lines

    if categories is None:
        return yolo_segmentation_lines(records, height, width, tolerance=tolerance)
    lines = []
    for record in records:
        class_id = int(record["category_id"]) - 1
        lines += yolo_segmentation_lines([record], height, width, class_id, tolerance)
    return lines


# ----------------------------------------------------------------------------- mcp


@app.command()
def mcp(
    model: Annotated[
        str, typer.Option("--model", "-m", help="Model name or alias (see `tijeras models`).")
    ] = TEXT_MODEL,
    checkpoint: Annotated[
        Path | None,
        typer.Option("--checkpoint", metavar="PATH", help="Weights file (default: the cache)."),
    ] = None,
    device: DeviceOption = "cpu",
) -> None:
    """Serve segmentation tools to language-model clients over the Model Context Protocol
    (stdio): open an image, find every instance of a phrase, segment at a point or in a box,
    save masks and cut-outs. Needs the mcp package (pip install 'tijeras\\[mcp]')."""
    try:
        import mcp.server  # noqa: F401
    except ImportError:
        _fail("the MCP server needs the mcp package: pip install 'tijeras[mcp]'")
    with _user_errors():
        from tijeras.catalog import get_spec

        get_spec(model)  # an unknown name fails now, not on the client's first call
    from tijeras.mcp import main

    argv = ["--model", model, "--device", device]
    if checkpoint is not None:
        argv += ["--checkpoint", str(checkpoint)]
    main(argv)
