"""``tijeras export MODEL --format onnx``: the image encoder and prompt decoder as ONNX graphs.

Each graph is run under ONNX Runtime and compared with the model's PyTorch path before the
command reports it (see :mod:`tijeras.export.onnx`); the conventions of the graphs' inputs are
written beside them in ``MODEL.onnx.json``.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from tijeras.cli.common import CacheOption, CheckpointOption, _user_errors, app, model_builder


class ExportFormat(str, Enum):
    onnx = "onnx"


@app.command()
def export(
    model: Annotated[str, typer.Argument(help="Model name or alias (see `tijeras models`).")],
    format: Annotated[
        ExportFormat, typer.Option("--format", help="Graph format.")
    ] = ExportFormat.onnx,
    out: Annotated[
        Path, typer.Option("--out", metavar="DIR", help="Folder for the graphs.")
    ] = Path("."),
    checkpoint: CheckpointOption = None,
    cache: CacheOption = None,
    encoder_only: Annotated[
        bool, typer.Option("--encoder-only", help="Export only the image encoder.")
    ] = False,
    decoder_only: Annotated[
        bool, typer.Option("--decoder-only", help="Export only the prompt decoder.")
    ] = False,
    single_mask: Annotated[
        bool,
        typer.Option("--single-mask", help="The decoder returns one mask (default: three)."),
    ] = False,
    original_size: Annotated[
        bool,
        typer.Option(
            "--original-size",
            help="The decoder also takes orig_im_size and returns masks at that size.",
        ),
    ] = False,
    int8: Annotated[
        bool,
        typer.Option("--int8", help="Also write an int8 dynamic quantisation of each graph."),
    ] = False,
    opset: Annotated[
        int | None, typer.Option("--opset", help="ONNX opset (default: the exporter's).")
    ] = None,
) -> None:
    """Export MODEL's image encoder and prompt decoder, each checked under ONNX Runtime.

    Writes MODEL.encoder.onnx, MODEL.decoder.onnx and MODEL.onnx.json (inputs, outputs and
    prompt conventions). Needs the packages of the export extra: onnx, onnxscript and
    onnxruntime.
    """
    from tijeras.cli.common import _fail

    if encoder_only and decoder_only:
        _fail("--encoder-only and --decoder-only exclude each other")
    parts = ["encoder"] if encoder_only else ["decoder"] if decoder_only else None
    build = model_builder(model, checkpoint, "cpu", "float32", cache)
    with _user_errors():
        from tijeras.catalog import get_spec
        from tijeras.export.onnx import PARTS, export_onnx, require_onnx

        require_onnx()
        name = get_spec(model).name
        loaded = build()
        typer.echo(f"exporting {name} to {out} (format {format.value}) ...", err=True)
        graphs = export_onnx(
            loaded,
            out,
            name,
            parts=parts or PARTS,
            multimask=not single_mask,
            original_size=original_size,
            quantize=int8,
            opset=opset,
        )
    for graph in graphs:
        size = graph.path.stat().st_size / 1e6
        if graph.max_error is not None:
            check = f"checked against PyTorch: max difference {graph.max_error:.1e} of the range"
        elif graph.mask_iou is not None:
            check = f"int8: masks at IoU {graph.mask_iou:.3f} of float32 on a random example"
        else:
            check = "int8"
        typer.echo(f"{graph.path}  {size:.1f} MB  {graph.part}  ({check})")
        typer.echo(f"  inputs: {', '.join(graph.inputs)}; outputs: {', '.join(graph.outputs)}")
    typer.echo(f"conventions: {Path(out) / (name + '.onnx.json')}")
