"""Georeferenced rasters on the command line: vector layers out, prompts in map coordinates.

``tijeras everything RASTER --out LAYER.gpkg`` and ``tijeras segment RASTER --point-geo X,Y
--out LAYER.geojson`` take this path (a vector ``--out``: ``.gpkg``, ``.geojson``, ``.json``,
``.shp``, or any of the geo flags below); the commands of :mod:`tijeras.cli.everything` and
:mod:`tijeras.cli.commands` hand over to :func:`everything_geo` and :func:`segment_geo`. The
option types are defined here once and used by both commands. Everything cheap (the raster, its
bands, the stretch, the prompts, the output's suffix and folder) is checked before the model
loads; each mistake is one ``error:`` line.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from tijeras.cli.common import _fail, _parse_numbers

VECTOR_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp")
"""Output suffixes that select the geospatial path (kept in step with tijeras.geo.layer)."""

BandsOption = Annotated[
    str | None,
    typer.Option(
        "--bands",
        metavar="B|R,G,B",
        help="Raster bands shown to the model, 1-based: one (grey) or three (default: the "
        "raster's red, green, blue, else 1,2,3).",
        show_default=False,
    ),
]
StretchOption = Annotated[
    str | None,
    typer.Option(
        "--stretch",
        metavar="LOW,HIGH",
        help="Percentiles mapped to 0 and 255 (default: none for 8-bit rasters, 2,98 otherwise).",
        show_default=False,
    ),
]
SimplifyOption = Annotated[
    float | None,
    typer.Option(
        "--simplify",
        metavar="TOL",
        min=0.0,
        help="Simplify outlines by up to TOL map units (default: exact pixel edges).",
        show_default=False,
    ),
]
CoverageOption = Annotated[
    bool,
    typer.Option(
        "--coverage",
        help="Vector output without overlaps or gaps between neighbours (shared edges).",
    ),
]
CoverageGapOption = Annotated[
    int | None,
    typer.Option(
        "--coverage-gap",
        metavar="PX",
        min=0,
        help="With --coverage: widest gap between two objects closed, in pixels (default 3).",
        show_default=False,
    ),
]
DEFAULT_COVERAGE_GAP = 3
PointGeoOption = Annotated[
    list[str] | None,
    typer.Option(
        "--point-geo",
        metavar="X,Y",
        help="Foreground point in map coordinates (the raster's CRS or --crs; repeatable).",
    ),
]
NegPointGeoOption = Annotated[
    list[str] | None,
    typer.Option(
        "--neg-point-geo",
        metavar="X,Y",
        help="Background point in map coordinates (repeatable).",
    ),
]
BoxGeoOption = Annotated[
    str | None,
    typer.Option(
        "--box-geo", metavar="X0,Y0,X1,Y1", help="Box in map coordinates.", show_default=False
    ),
]
CrsOption = Annotated[
    str | None,
    typer.Option(
        "--crs",
        metavar="CRS",
        help="CRS of --point-geo/--box-geo (EPSG:4326: x is longitude), default the raster's.",
        show_default=False,
    ),
]


def is_vector(path: Path | None) -> bool:
    return path is not None and path.suffix.lower() in VECTOR_SUFFIXES


def wants_geo_everything(out: Path, geo_flags: dict[str, Any]) -> bool:
    """Whether ``tijeras everything`` takes the geospatial path (a vector ``--out``)."""
    if is_vector(out):
        return True
    given = [flag for flag, value in geo_flags.items() if value not in (None, False)]
    if given:
        _fail(
            f"{', '.join(given)}: only for a raster written as a vector layer: give --out "
            f"LAYER with one of {', '.join(VECTOR_SUFFIXES)}"
        )
    return False


def wants_geo_segment(out: Path | None, geo_flags: dict[str, Any]) -> bool:
    """Whether ``tijeras segment`` takes the geospatial path: map prompts, a geo flag, or a
    vector ``--out``."""
    return is_vector(out) or any(value not in (None, False, []) for value in geo_flags.values())


# ----------------------------------------------------------------------------- parsing


def parse_bands(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    try:
        bands = tuple(int(p) for p in parts)
    except ValueError:
        _fail(f"--bands expects band numbers like 1 or 4,3,2, got {text!r}")
    if len(bands) not in (1, 3) or min(bands) < 1:
        _fail(f"--bands takes 1 band (grey) or 3 (red, green, blue), numbered from 1, got {text!r}")
    return bands


def parse_stretch(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    low, high = _parse_numbers("--stretch", text, 2, "LOW,HIGH")
    if not 0 <= low < high <= 100:
        _fail(f"--stretch percentiles must satisfy 0 <= LOW < HIGH <= 100, got {text!r}")
    return low, high


def _check_out(out: Path) -> None:
    if out.suffix.lower() not in VECTOR_SUFFIXES:
        _fail(
            f"--out {str(out)!r}: a raster's objects are written as a vector layer; use one of "
            f"{', '.join(VECTOR_SUFFIXES)}"
        )
    if not out.parent.is_dir():
        _fail(f"--out {str(out)!r}: folder {str(out.parent)!r} does not exist")
    if out.is_dir():
        _fail(f"--out {str(out)!r} is a folder; give a file name")


def _open(source: str, bands: tuple[int, ...] | None, stretch: tuple[float, float] | None) -> Any:
    from tijeras.geo import open_raster

    path = Path(source)
    if path.is_dir():
        _fail(f"{source} is a folder: a vector --out takes one raster")
    return open_raster(path, bands=bands, stretch=stretch)


def _progress_bar(name: str) -> Any:
    from tqdm import tqdm

    return tqdm(
        desc=name, unit="batch", leave=False, disable=None, file=sys.stderr, dynamic_ncols=True
    )


# ----------------------------------------------------------------------------- everything


def everything_geo(
    source: str,
    out: Path,
    options: dict[str, Any],
    tile: int | None,
    tile_overlap: int | None,
    bands_text: str | None,
    stretch_text: str | None,
    simplify: float | None,
    coverage: bool,
    gap: int | None,
    model_builder_args: tuple[str, Path | None, str, str, Path | None],
) -> None:
    """``tijeras everything RASTER --out LAYER``: every object as a vector layer."""
    from tijeras.catalog import get_spec
    from tijeras.cli.common import model_builder
    from tijeras.geo import raster_layer

    model_name, checkpoint, device, dtype, cache = model_builder_args
    spec = get_spec(model_name)
    try:
        chosen = spec.everything.replace(**options)
    except ValueError as exc:
        _fail(_flag_names(str(exc)))
    size = 1024 if tile is None else tile
    overlap = min(256, size // 4) if tile_overlap is None else tile_overlap
    if overlap >= size:
        _fail(f"--tile-overlap {overlap} must be smaller than --tile {size}")
    if gap is not None and not coverage:
        _fail("--coverage-gap applies with --coverage")
    gap = DEFAULT_COVERAGE_GAP if gap is None else gap
    _check_out(out)
    bands, stretch = parse_bands(bands_text), parse_stretch(stretch_text)
    if checkpoint is not None and not checkpoint.is_file():
        _fail(f"--checkpoint {str(checkpoint)!r}: no such file")
    with _open(source, bands, stretch) as raster:
        typer.echo(raster.describe())
        build = model_builder(model_name, checkpoint, device, dtype, cache)
        generator = build().mask_generator(chosen, output_mode="coco_rle")
        bar = _progress_bar(raster.name)

        def progress(done: int, total: int) -> None:
            bar.total, bar.n = total, done
            bar.refresh()

        try:
            layer = raster_layer(
                raster, generator, size, overlap, simplify, coverage, gap, progress
            )
        finally:
            bar.close()
    layer.write(out)
    typer.echo(
        f"wrote {out} ({len(layer)} objects, {layer.reference.crs_name}"
        f"{', coverage' if coverage else ''})"
    )


def _flag_names(message: str) -> str:
    from tijeras.automatic.options import FIELDS

    for name in FIELDS:
        message = message.replace(name, "--" + name.replace("_", "-"))
    return message


# ----------------------------------------------------------------------------- segment


def segment_geo(
    image: str,
    pixel_points: Sequence[str],
    pixel_neg_points: Sequence[str],
    pixel_box: str | None,
    points_geo: Sequence[str],
    neg_points_geo: Sequence[str],
    box_geo: str | None,
    crs: str | None,
    bands_text: str | None,
    stretch_text: str | None,
    simplify: float | None,
    multimask: bool,
    out: Path | None,
    image_outputs: dict[str, Path | None],
    model_builder_args: tuple[str, Path | None, str, str, Path | None],
) -> None:
    """``tijeras segment RASTER --point-geo X,Y --out LAYER``: the object as a vector layer."""
    from tijeras.cli.common import model_builder
    from tijeras.geo import GeoPredictor

    given = [flag for flag, path in image_outputs.items() if path is not None]
    if given:
        _fail(
            f"{', '.join(given)}: picture outputs are not written for a raster's map prompts "
            f"or a vector --out; write the layer with --out LAYER.gpkg|.geojson|.shp"
        )
    if out is None:
        _fail("give --out LAYER (.gpkg, .geojson, .json or .shp) for the object's polygon")
    _check_out(out)
    if (pixel_points or pixel_neg_points or pixel_box) and (
        points_geo or neg_points_geo or box_geo
    ):
        _fail(
            "give prompts either in pixels (--point, --box) or in map coordinates "
            "(--point-geo, --box-geo), not both"
        )
    if crs is not None and not (points_geo or neg_points_geo or box_geo):
        _fail("--crs applies to --point-geo, --neg-point-geo and --box-geo")
    geo_given = bool(points_geo or neg_points_geo or box_geo)
    coords = [
        _parse_numbers("--point-geo" if geo_given else "--point", p, 2, "X,Y")
        for p in (points_geo if geo_given else pixel_points)
    ]
    coords += [
        _parse_numbers("--neg-point-geo" if geo_given else "--neg-point", p, 2, "X,Y")
        for p in (neg_points_geo if geo_given else pixel_neg_points)
    ]
    labels = [1] * len(points_geo if geo_given else pixel_points)
    labels += [0] * len(neg_points_geo if geo_given else pixel_neg_points)
    box_text = box_geo if geo_given else pixel_box
    box_flag = "--box-geo" if geo_given else "--box"
    box = _parse_numbers(box_flag, box_text, 4, "X0,Y0,X1,Y1") if box_text else None
    if not coords and box is None:
        _fail("no prompt given: pass --point-geo X,Y, --neg-point-geo X,Y or --box-geo X0,Y0,X1,Y1")
    bands, stretch = parse_bands(bands_text), parse_stretch(stretch_text)
    with _open(image, bands, stretch) as raster:
        points = coords or None
        if not geo_given:  # pixels of the raster -> its own map coordinates
            points, box = _pixels_to_map(raster, coords, box)
        from tijeras.geo import to_pixels

        # Prompts outside the raster fail now, before the model loads.
        to_pixels(
            raster.reference,
            points=points,
            labels=labels or None,
            box=box,
            crs=crs,
            name=raster.name,
        )
        model_name, checkpoint, device, dtype, cache = model_builder_args
        build = model_builder(model_name, checkpoint, device, dtype, cache)
        predictor = GeoPredictor(build(), raster)
        layer = predictor.predict(
            points, labels or None, box, crs=crs, multimask=multimask or None, simplify=simplify
        )
    if not len(layer):
        typer.echo("warning: the mask is empty (or all nodata); the layer has no feature", err=True)
    for feature in layer.features:
        area = "" if feature.area_m2 is None else f", {feature.area_m2:.6g} m2"
        typer.echo(f"object {feature.id}: score {feature.score:.3f}, {feature.area_px} px{area}")
    layer.write(out)
    typer.echo(f"wrote {out} ({len(layer)} feature(s), {layer.reference.crs_name})")


def _pixels_to_map(
    raster: Any, coords: list[tuple[float, ...]], box: tuple[float, ...] | None
) -> tuple[list[list[float]] | None, list[float] | None]:
    ref = raster.reference
    corners = [(c, "--point") for c in coords]
    if box is not None:
        corners += [((box[0], box[1]), "--box"), ((box[2], box[3]), "--box")]
    for (x, y), flag in corners:
        if not (0 <= x <= ref.width and 0 <= y <= ref.height):
            _fail(f"{flag} {x:g},{y:g} is outside {raster.name} ({ref.width} x {ref.height} px)")
    points = None
    if coords:
        xs, ys = ref.pixel_to_map([c[0] for c in coords], [c[1] for c in coords])
        points = [[float(x), float(y)] for x, y in zip(xs, ys)]
    if box is not None:
        xs, ys = ref.pixel_to_map([box[0], box[2]], [box[1], box[3]])
        box = (float(xs[0]), float(ys[0]), float(xs[1]), float(ys[1]))
    return points, None if box is None else list(box)
