"""``tijeras track`` and ``tijeras eval-video``: video tracking and its evaluation.

    tijeras track clip.mp4 --point 0:210,350 --box 0:100,80,300,400 --out tracks/
    tijeras track frames/ --point 0:210,350 --obj 2 --point 20:700,250 --neg-point 20:650,300
    tijeras eval-video DAVIS/ --out predictions/

``track`` writes, for a video ``NAME``::

    OUT/NAME/<frame>.png      png      one palette PNG per frame, pixel = object label (DAVIS)
    OUT/NAME.json             json     SA-V style masklets: per frame, per object COCO RLEs
    OUT/NAME_overlay.mp4      overlay  the frames with the objects drawn over them

Prompts name their frame: ``--point F:X,Y``, ``--neg-point F:X,Y``, ``--box F:X0,Y0,X1,Y1``,
``--mask F:MASK.png``. They belong to object 1 until ``--obj ID`` starts another object (IDs
1..255 are the PNG labels). Tracking runs forward from the earliest prompted frame, or with
``--reverse`` backward from the latest; memory stays flat however long the video is. A mistake
(unreadable video, a frame index out of range, a point outside the frame) is one ``error:``
line and exit code 2.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from tijeras.cli.common import (
    CacheOption,
    CheckpointOption,
    DeviceOption,
    DType,
    DTypeOption,
    _fail,
    _parse_numbers,
    _user_errors,
    app,
    model_builder,
)

DEFAULT_VIDEO_MODEL = "sam2.1-hiera-tiny"
TRACK_FORMATS = ("png", "json", "overlay")
PROMPT_FLAGS = {
    "--point": "point",
    "-p": "point",
    "--neg-point": "neg",
    "-n": "neg",
    "--box": "box",
    "-b": "box",
    "--mask": "mask",
    "--obj": "obj",
}
VideoModelOption = Annotated[
    str,
    typer.Option("--model", "-m", help="A SAM 2 model (see `tijeras models`)."),
]


class _OrderedPromptsCommand(TyperCommand):
    """Keeps the command line as given: which object a prompt belongs to depends on the order
    of ``--obj`` and the prompt flags, which parsing alone loses."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta["tijeras.raw_args"] = list(args)
        return super().parse_args(ctx, args)


@dataclass
class ObjectPrompts:
    """Prompts of one object, by frame."""

    obj_id: int
    points: dict[int, list[tuple[float, float, int]]] = field(default_factory=dict)
    boxes: dict[int, tuple[float, ...]] = field(default_factory=dict)
    masks: dict[int, Path] = field(default_factory=dict)

    def frames(self) -> set[int]:
        return set(self.points) | set(self.boxes) | set(self.masks)


def ordered_prompts(raw: list[str]) -> list[tuple[str, str]]:
    """(kind, value) of the prompt flags and ``--obj`` in command-line order."""
    out = []
    i = 0
    while i < len(raw):
        token = raw[i]
        if token == "--":
            break
        name, eq, value = token.partition("=")
        if name in PROMPT_FLAGS and (eq or name.startswith("--")):
            if not eq:
                i += 1
                value = raw[i] if i < len(raw) else ""
            out.append((PROMPT_FLAGS[name], value))
        elif name[:2] in PROMPT_FLAGS and not name.startswith("--"):
            short = name[:2]
            if len(token) > 2:
                out.append((PROMPT_FLAGS[short], token[2:]))
            else:
                i += 1
                out.append((PROMPT_FLAGS[short], raw[i] if i < len(raw) else ""))
        i += 1
    return out


def parse_prompts(raw: list[str]) -> list[ObjectPrompts]:
    """Objects and their prompts from the command line (one ``error:`` line for a bad one)."""
    objects: dict[int, ObjectPrompts] = {}
    current = 1
    for kind, value in ordered_prompts(raw):
        if kind == "obj":
            try:
                current = int(value)
            except ValueError:
                current = -1
            if not 1 <= current <= 255:
                _fail(f"--obj expects an object id from 1 to 255, got {value!r}")
            continue
        flag = {"point": "--point", "neg": "--neg-point", "box": "--box", "mask": "--mask"}[kind]
        frame_text, sep, rest = value.partition(":")
        if not sep or not frame_text.strip().lstrip("-").isdigit():
            shape = {"box": "F:X0,Y0,X1,Y1", "mask": "F:MASK.png"}.get(kind, "F:X,Y")
            _fail(f"{flag} expects {shape} (F the frame index), got {value!r}")
        frame = int(frame_text)
        obj = objects.setdefault(current, ObjectPrompts(current))
        if kind == "mask":
            if frame in obj.masks or frame in obj.points or frame in obj.boxes:
                _fail(f"object {current}: frame {frame} has a mask and other prompts")
            obj.masks[frame] = Path(rest)
            continue
        if frame in obj.masks:
            _fail(f"object {current}: frame {frame} has a mask and other prompts")
        if kind == "box":
            if frame in obj.boxes:
                _fail(f"object {current}: two boxes on frame {frame}")
            obj.boxes[frame] = _parse_numbers(flag, rest, 4, "F:X0,Y0,X1,Y1")
        else:
            x, y = _parse_numbers(flag, rest, 2, "F:X,Y")
            obj.points.setdefault(frame, []).append((x, y, 1 if kind == "point" else 0))
    return list(objects.values())


def _read_mask(path: Path, size: tuple[int, int], flag_value: str) -> Any:
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            mask = np.array(img.convert("L")) > 0
    except (OSError, UnidentifiedImageError):
        _fail(f"--mask {flag_value}: {str(path)!r} is not a readable image")
    if mask.shape != size:
        _fail(
            f"--mask {flag_value}: the mask is {mask.shape[1]}x{mask.shape[0]}, the video "
            f"{size[1]}x{size[0]}"
        )
    return mask


# ----------------------------------------------------------------------------- track
@app.command(cls=_OrderedPromptsCommand)
def track(
    ctx: typer.Context,
    video: Annotated[
        str,
        typer.Argument(
            metavar="VIDEO|FOLDER",
            help="A video file (MP4, MOV, MKV, WebM, AVI...) or a folder of JPEG frames.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", metavar="DIR", help="Output folder.", show_default=False)
    ],
    point: Annotated[
        list[str] | None,
        typer.Option("--point", "-p", metavar="F:X,Y", help="Foreground click on frame F."),
    ] = None,
    neg_point: Annotated[
        list[str] | None,
        typer.Option("--neg-point", "-n", metavar="F:X,Y", help="Background click on frame F."),
    ] = None,
    box: Annotated[
        list[str] | None,
        typer.Option("--box", "-b", metavar="F:X0,Y0,X1,Y1", help="Box on frame F."),
    ] = None,
    mask: Annotated[
        list[str] | None,
        typer.Option("--mask", metavar="F:MASK.png", help="Mask of the object on frame F."),
    ] = None,
    obj: Annotated[
        list[int] | None,
        typer.Option(
            "--obj",
            metavar="ID",
            help="Start the prompts of another object (IDs 1..255; before any --obj: 1).",
        ),
    ] = None,
    reverse: Annotated[
        bool, typer.Option("--reverse", help="Track backward from the latest prompted frame.")
    ] = False,
    formats: Annotated[
        str,
        typer.Option(
            "--formats", "-f", metavar="LIST", help=f"Outputs among {', '.join(TRACK_FORMATS)}."
        ),
    ] = ",".join(TRACK_FORMATS),
    model: VideoModelOption = DEFAULT_VIDEO_MODEL,
    checkpoint: CheckpointOption = None,
    device: DeviceOption = "cpu",
    dtype: DTypeOption = DType.float32,
    cache: CacheOption = None,
) -> None:
    """Track objects through a video from prompts on some of its frames."""
    with _user_errors():
        chosen = _formats(formats)
        objects = parse_prompts(ctx.meta.get("tijeras.raw_args", sys.argv[1:]))
        if not objects:
            _fail("give at least one prompt: --point F:X,Y, --box F:X0,Y0,X1,Y1 or --mask F:PNG")
        if not Path(video).exists():
            _fail(f"video not found: {video}")
        build = model_builder(model, checkpoint, device, dtype.value, cache, offline_hint=False)
        _track(video, out, objects, reverse, chosen, build, model)


def _formats(text: str) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    unknown = [f for f in chosen if f not in TRACK_FORMATS]
    if unknown or not chosen:
        _fail(
            f"--formats: unknown format {unknown[0] if unknown else text!r}; "
            f"choose among {', '.join(TRACK_FORMATS)}"
        )
    return chosen


def _video_model(build: Any, name: str) -> Any:
    from tijeras.models.sam2.model import Sam2Model

    model = build()
    if not isinstance(model, Sam2Model):
        _fail(f"model {name} cannot track videos; use a SAM 2 model such as {DEFAULT_VIDEO_MODEL}")
    return model


def _track(
    video: str,
    out: Path,
    objects: list[ObjectPrompts],
    reverse: bool,
    formats: tuple[str, ...],
    build: Any,
    model_name: str,
) -> None:
    from tijeras.models.sam2.video_config import tracking_config
    from tijeras.video.frames import ImageFolder, open_frames
    from tijeras.video.tracker import VideoTracker

    frames = open_frames(video)
    name = Path(video.rstrip("/\\")).stem or "video"
    for o in objects:
        for frame in sorted(o.frames()):
            frames.check_index(frame)
    sam2 = _video_model(build, model_name)
    tracker = VideoTracker(sam2, tracking_config(sam2.config))
    state = tracker.init_state(frames, keep_all_memories=False)
    _add_prompts(tracker, state, objects)
    prompted = sorted({f for o in objects for f in o.frames()})
    start = prompted[-1] if reverse else prompted[0]
    total = start + 1 if reverse else state.num_frames - start  # type: ignore[operator]
    frame_names = (
        [p.stem for p in frames.paths]
        if isinstance(frames, ImageFolder)
        else [f"{i:05d}" for i in range(state.num_frames or 0)]
    )
    sinks = _Outputs(out, name, formats, state, frame_names, getattr(frames, "fps", 24.0))
    sinks.empty_frames(range(start + 1, state.num_frames or 0) if reverse else range(start))
    t0 = time.perf_counter()
    with _progress(total) as bar:
        for result in tracker.propagate(state, start, reverse=reverse):
            sinks.write(result, frames)
            bar.update(1)
    seconds = time.perf_counter() - t0
    written = sinks.close()
    ids = ", ".join(str(o.obj_id) for o in objects)
    typer.echo(
        f"tracked {len(objects)} object(s) ({ids}) over {total} frames of {name} in "
        f"{seconds:.1f} s ({total / max(seconds, 1e-9):.2f} frames/s)"
    )
    for path in written:
        typer.echo(f"wrote {path}")


def _add_prompts(tracker: Any, state: Any, objects: list[ObjectPrompts]) -> None:
    for o in objects:
        for frame in sorted(o.frames()):
            if frame in o.masks:
                path = o.masks[frame]
                m = _read_mask(path, state.video_size, f"{frame}:{path}")
                tracker.add_mask(state, frame, o.obj_id, m)
                continue
            pts = o.points.get(frame, [])
            coords = [[x, y] for x, y, _ in pts] or None
            labels = [lab for _, _, lab in pts] or None
            tracker.add_points(state, frame, o.obj_id, coords, labels, box=o.boxes.get(frame))


class _Outputs:
    """The chosen output files of one tracked video."""

    def __init__(
        self,
        out: Path,
        name: str,
        formats: tuple[str, ...],
        state: Any,
        frame_names: list[str],
        fps: float,
    ) -> None:
        from tijeras.video.export import (
            MaskletWriter,
            OverlayWriter,
            PaletteWriter,
            object_labels,
        )

        out.mkdir(parents=True, exist_ok=True)
        self.frame_names = frame_names
        self.labels = object_labels(state.obj_ids)
        self.pngs = PaletteWriter(out / name) if "png" in formats else None
        self.json = (
            MaskletWriter(
                out / f"{name}.json", name, state.video_size, state.obj_ids, state.num_frames
            )
            if "json" in formats
            else None
        )
        self.overlay = (
            OverlayWriter(out / f"{name}_overlay.mp4", state.video_size, fps)
            if "overlay" in formats
            else None
        )
        self.size = state.video_size
        self.out = out
        self.name = name

    def empty_frames(self, indices: range) -> None:
        import numpy as np

        if self.pngs is not None:
            blank = np.zeros(self.size, np.uint8)
            for i in indices:
                self.pngs.write(self.frame_names[i], blank)

    def write(self, result: Any, frames: Any) -> None:
        from tijeras.video.export import label_image

        masks = result.masks()
        labels = [self.labels[i] for i in result.obj_ids]
        if self.pngs is not None:
            self.pngs.write(self.frame_names[result.frame_idx], label_image(masks, labels))
        if self.json is not None:
            self.json.write(result.frame_idx, masks)
        if self.overlay is not None:
            self.overlay.write(frames.read(result.frame_idx), masks, labels)

    def close(self) -> list[Path]:
        written = []
        if self.pngs is not None:
            written.append(self.out / self.name)
        if self.json is not None:
            written.append(self.json.close())
        if self.overlay is not None:
            written.append(self.overlay.close())
        return written


def _progress(total: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", file=sys.stderr, dynamic_ncols=True, leave=False)


# ----------------------------------------------------------------------------- eval-video
@app.command("eval-video")
def eval_video(
    data: Annotated[
        Path,
        typer.Argument(
            metavar="DATASET",
            help="A folder with JPEGImages/<video>/ and Annotations/<video>/ (DAVIS or SA-V).",
            show_default=False,
        ),
    ],
    pred: Annotated[
        Path | None,
        typer.Option(
            "--pred", metavar="DIR", help="Score these predictions instead of running a model."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", metavar="DIR", help="Also write the predicted masks there."),
    ] = None,
    videos: Annotated[
        str | None,
        typer.Option("--videos", metavar="A,B", help="Only these videos (comma-separated)."),
    ] = None,
    json_path: Annotated[
        Path | None,
        typer.Option("--json", metavar="FILE", help="Write the scores as JSON."),
    ] = None,
    postprocessing: Annotated[
        bool,
        typer.Option(
            "--postprocessing/--no-postprocessing",
            help="Meta's hole filling and binarised memories (off in Meta's evaluation).",
        ),
    ] = False,
    model: VideoModelOption = DEFAULT_VIDEO_MODEL,
    checkpoint: CheckpointOption = None,
    device: DeviceOption = "cpu",
    dtype: DTypeOption = DType.float32,
    cache: CacheOption = None,
) -> None:
    """J, F and J&F of semi-supervised video object segmentation (first-frame masks given),
    scored as the DAVIS 2017 and SA-V evaluations do."""
    with _user_errors():
        names = [v.strip() for v in videos.split(",") if v.strip()] if videos else None
        _eval_video(
            data,
            pred,
            out,
            names,
            json_path,
            postprocessing,
            model,
            checkpoint,
            device,
            dtype.value,
            cache,
        )


def _eval_video(
    data: Path,
    pred: Path | None,
    out: Path | None,
    names: list[str] | None,
    json_path: Path | None,
    postprocessing: bool,
    model: str,
    checkpoint: Path | None,
    device: str,
    dtype: str,
    cache: Path | None,
) -> None:
    import json

    from tijeras.evaluate.video import find_videos, score_predictions, track_and_score

    if not data.is_dir():
        _fail(f"dataset {str(data)!r} is not a folder")
    if pred is not None:
        report = score_predictions(data, pred, names)
    else:
        from tijeras.models.sam2.video_config import tracking_config
        from tijeras.sam2.video_predictor import SAM2VideoPredictor

        samples = find_videos(data, names)
        build = model_builder(model, checkpoint, device, dtype, cache, offline_hint=False)
        sam2 = _video_model(build, model)
        config = tracking_config(sam2.config, apply_postprocessing=postprocessing)
        predictor = SAM2VideoPredictor(sam2, config)
        total = sum(len(s.frame_names) for s in samples)
        with _progress(total) as bar:
            report = track_and_score(predictor, data, names, out, bar.update)
    typer.echo(report.table())
    typer.echo(f"J&F {100 * report.jf:.2f}  J {100 * report.j:.2f}  F {100 * report.f:.2f}")
    if report.frames_tracked:
        typer.echo(
            f"tracked {report.frames_tracked} frames in {report.seconds:.1f} s "
            f"({report.frames_tracked / max(report.seconds, 1e-9):.2f} frames/s)"
        )
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report.as_dict(), indent=2))
        typer.echo(f"wrote {json_path}")
