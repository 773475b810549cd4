"""Video object segmentation: J (region IoU), F (boundary F-measure) and J&F, semi-supervised.

The protocol is that of DAVIS 2017 and SA-V as Meta's ``tools/vos_inference.py`` runs them:
each object's mask on the first frame is given (``add_new_mask`` on frame 0), every object is
propagated forward through the video, and a pixel belongs to an object where its logit is
above 0. The scores follow the DAVIS 2017 evaluation:

- **J** of an object on a frame: IoU of the predicted and true masks, pixels marked void (255)
  left out; 1 when both are empty.
- **F**: precision and recall of the predicted boundary against the true one, a boundary pixel
  matching if the other boundary passes within ``ceil(0.008 * image diagonal)`` pixels (a disc
  dilation); boundaries are the one-pixel maps of the DAVIS code (a pixel differing from its
  right, lower or lower-right neighbour).
- Frames scored: all but the first and the last (of the annotated frames, for SA-V).
- An object's J (F) is its mean over frames; the dataset's J (F) is the mean over all objects of
  all videos; J&F is their average.

Layouts (``Annotations`` holds the ground truth, ``JPEGImages`` the frames)::

    ROOT/JPEGImages/<video>/00000.jpg ...
    ROOT/Annotations/<video>/00000.png ...          DAVIS: one palette PNG per frame
    ROOT/Annotations/<video>/<object>/00000.png ... SA-V: one binary PNG per object and frame

In the DAVIS layout objects are predicted without overlap (Meta's ``non_overlap_masks``) and
written as one label image per frame, the lowest label winning, as ``vos_inference.py`` does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DatasetError
from .metrics import iou

VOID_LABEL = 255
BOUNDARY_TOLERANCE = 0.008


# ----------------------------------------------------------------------------- metrics
def boundary_map(mask: np.ndarray) -> np.ndarray:
    """One-pixel boundary of an H x W mask: pixels that differ from their right, lower or
    lower-right neighbour (the last row and column compare only along themselves)."""
    seg = mask.astype(bool)
    right = np.zeros_like(seg)
    down = np.zeros_like(seg)
    diag = np.zeros_like(seg)
    right[:, :-1] = seg[:, 1:]
    down[:-1, :] = seg[1:, :]
    diag[:-1, :-1] = seg[1:, 1:]
    edge = (seg ^ right) | (seg ^ down) | (seg ^ diag)
    edge[-1, :] = seg[-1, :] ^ right[-1, :]
    edge[:, -1] = seg[:, -1] ^ down[:, -1]
    edge[-1, -1] = False
    return edge


def _disc(radius: int) -> np.ndarray:
    r = int(radius)
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    return (x * x + y * y <= r * r).astype(np.uint8)


def boundary_f(
    gt: np.ndarray,
    pred: np.ndarray,
    void: np.ndarray | None = None,
    tolerance: float = BOUNDARY_TOLERANCE,
) -> float:
    """DAVIS boundary F-measure of a predicted H x W mask against the true one."""
    import cv2

    keep = np.ones(gt.shape, bool) if void is None else ~void
    pred_b = boundary_map(pred.astype(bool) & keep)
    gt_b = boundary_map(gt.astype(bool) & keep)
    radius = tolerance if tolerance >= 1 else math.ceil(tolerance * math.hypot(*gt.shape))
    disc = _disc(int(radius))
    pred_near = cv2.dilate(pred_b.astype(np.uint8), disc).astype(bool)
    gt_near = cv2.dilate(gt_b.astype(np.uint8), disc).astype(bool)
    n_pred, n_gt = int(pred_b.sum()), int(gt_b.sum())
    if n_pred == 0 and n_gt == 0:
        return 1.0
    if n_pred == 0:
        precision, recall = 1.0, 0.0
    elif n_gt == 0:
        precision, recall = 0.0, 1.0
    else:
        precision = float((pred_b & gt_near).sum()) / n_pred
        recall = float((gt_b & pred_near).sum()) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def region_j(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None) -> float:
    """DAVIS region similarity J: IoU without void pixels (1 when both are empty)."""
    return iou(gt.astype(bool), pred.astype(bool), void)


# ----------------------------------------------------------------------------- reports
@dataclass(frozen=True)
class ObjectScore:
    """One object's scores over the scored frames of its video."""

    video: str
    obj_id: int | str
    j: float
    f: float
    frames: int

    @property
    def jf(self) -> float:
        return (self.j + self.f) / 2


@dataclass(frozen=True)
class VideoEvalReport:
    """Scores of a dataset: per object, and the means over all objects (0..1)."""

    objects: tuple[ObjectScore, ...]
    layout: str
    seconds: float = 0.0
    frames_tracked: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def j(self) -> float:
        return float(np.mean([o.j for o in self.objects])) if self.objects else float("nan")

    @property
    def f(self) -> float:
        return float(np.mean([o.f for o in self.objects])) if self.objects else float("nan")

    @property
    def jf(self) -> float:
        return (self.j + self.f) / 2

    def as_dict(self) -> dict[str, Any]:
        return {
            "layout": self.layout,
            "J&F": self.jf,
            "J": self.j,
            "F": self.f,
            "objects": len(self.objects),
            "videos": len({o.video for o in self.objects}),
            "frames_tracked": self.frames_tracked,
            "seconds": self.seconds,
            "per_object": [
                {"video": o.video, "object": o.obj_id, "J": o.j, "F": o.f, "frames": o.frames}
                for o in self.objects
            ],
            **self.extra,
        }

    def table(self) -> str:
        lines = [f"{'video':<24} {'object':>8} {'J':>7} {'F':>7} {'J&F':>7}"]
        for o in self.objects:
            lines.append(
                f"{o.video[:24]:<24} {o.obj_id!s:>8} {100 * o.j:7.2f} {100 * o.f:7.2f} "
                f"{100 * o.jf:7.2f}"
            )
        lines.append(
            f"{'mean of ' + str(len(self.objects)) + ' objects':<33} {100 * self.j:7.2f} "
            f"{100 * self.f:7.2f} {100 * self.jf:7.2f}"
        )
        return "\n".join(lines)


# ----------------------------------------------------------------------------- datasets
@dataclass(frozen=True)
class VideoSample:
    """One video of a dataset: its frames folder and ground truth.

    Attributes:
        name: the video's folder name.
        frames: the folder of JPEG frames.
        annotations: ``Annotations/<video>``.
        layout: ``"davis"`` (label PNGs) or ``"sav"`` (a folder per object).
        frame_names: frame stems in order (``00000``...).
    """

    name: str
    frames: Path
    annotations: Path
    layout: str
    frame_names: tuple[str, ...]

    def objects(self) -> list[int | str]:
        """The objects to track: labels of the first annotation (DAVIS) or object folders."""
        if self.layout == "sav":
            return sorted(p.name for p in self.annotations.iterdir() if p.is_dir())
        first = read_labels(self.annotations / f"{self.frame_names[0]}.png")
        return [int(v) for v in np.unique(first) if v not in (0, VOID_LABEL)]

    def first_mask(self, obj: int | str) -> tuple[int, np.ndarray]:
        """(frame index, H x W bool) of an object's input mask: frame 0, or for an SA-V object
        without a frame-0 file its first annotated frame."""
        if self.layout == "davis":
            labels = read_labels(self.annotations / f"{self.frame_names[0]}.png")
            return 0, labels == obj
        for i, name in enumerate(self.frame_names):
            path = self.annotations / str(obj) / f"{name}.png"
            if path.is_file():
                return i, read_labels(path) > 0
        raise DatasetError(f"object {obj} of video {self.name} has no annotation")

    def ground_truth(self, obj: int | str) -> list[tuple[int, Path]]:
        """(frame index, PNG) of the annotated frames of an object, in order."""
        folder = self.annotations / str(obj) if self.layout == "sav" else self.annotations
        index = {name: i for i, name in enumerate(self.frame_names)}
        out = sorted((index[p.stem], p) for p in folder.glob("*.png") if p.stem in index)
        return out


def read_labels(path: Path) -> np.ndarray:
    """A label PNG (palette indices, or grey levels) as H x W uint8."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            if img.mode in ("P", "L"):
                return np.array(img)
            return np.array(img.convert("L"))
    except OSError as exc:
        raise DatasetError(f"cannot read annotation {path}: {exc}") from None


def find_videos(root: str | Path, names: Sequence[str] | None = None) -> list[VideoSample]:
    """The videos of a DAVIS- or SA-V-style folder (``JPEGImages`` + ``Annotations``)."""
    root = Path(root)
    frames_root = _first_dir(root, ("JPEGImages", "JPEGImages_24fps"))
    ann_root = _first_dir(root, ("Annotations", "Annotations_6fps"))
    if frames_root is None or ann_root is None:
        raise DatasetError(
            f"{root} is not a video dataset: expected JPEGImages/<video>/*.jpg and "
            "Annotations/<video>/*.png (DAVIS) or Annotations/<video>/<object>/*.png (SA-V)"
        )
    videos = sorted(p.name for p in ann_root.iterdir() if p.is_dir())
    if names:
        missing = sorted(set(names) - set(videos))
        if missing:
            raise DatasetError(f"videos not in {ann_root}: {', '.join(missing)}")
        videos = [v for v in videos if v in set(names)]
    out = []
    for name in videos:
        frame_dir = frames_root / name
        stems = (
            sorted(
                (p.stem for p in frame_dir.glob("*") if p.suffix.lower() in (".jpg", ".jpeg")),
                key=lambda s: (0, int(s)) if s.isdigit() else (1, s),
            )
            if frame_dir.is_dir()
            else []
        )
        if not stems:
            raise DatasetError(f"video {name}: no JPEG frames in {frame_dir}")
        ann = ann_root / name
        layout = "sav" if any(p.is_dir() for p in ann.iterdir()) else "davis"
        out.append(VideoSample(name, frame_dir, ann, layout, tuple(stems)))
    if not out:
        raise DatasetError(f"no videos in {ann_root}")
    return out


def _first_dir(root: Path, names: Iterable[str]) -> Path | None:
    for name in names:
        if (root / name).is_dir():
            return root / name
    return None


# ----------------------------------------------------------------------------- scoring
def score_video(
    sample: VideoSample,
    predicted: Callable[[int | str, int], np.ndarray],
    objects: Sequence[int | str] | None = None,
    skip_first_and_last: bool = True,
) -> list[ObjectScore]:
    """J and F of each object of a video.

    Args:
        sample: the video.
        predicted: ``(object, frame index) -> H x W bool`` predicted mask.
        objects: the objects to score (default: :meth:`VideoSample.objects`).
        skip_first_and_last: leave out the first and last scored frames (the standard).
    """
    scores = []
    for obj in objects if objects is not None else sample.objects():
        gt_frames = sample.ground_truth(obj)
        if skip_first_and_last:
            gt_frames = gt_frames[1:-1]
        js, fs = [], []
        for frame_idx, path in gt_frames:
            labels = read_labels(path)
            if sample.layout == "davis":
                gt, void = labels == obj, labels == VOID_LABEL
            else:
                gt, void = labels > 0, None
            pred = predicted(obj, frame_idx)
            if pred.shape != gt.shape:
                raise DatasetError(
                    f"video {sample.name} frame {frame_idx}: prediction {pred.shape} does not "
                    f"match the annotation {gt.shape}"
                )
            js.append(region_j(gt, pred, void))
            fs.append(boundary_f(gt, pred, void))
        if js:
            scores.append(
                ObjectScore(sample.name, obj, float(np.mean(js)), float(np.mean(fs)), len(js))
            )
    return scores


def score_predictions(
    root: str | Path, predictions: str | Path, names: Sequence[str] | None = None
) -> VideoEvalReport:
    """Scores of predictions already written in the dataset's layout under ``predictions``."""
    videos = find_videos(root, names)
    pred_root = Path(predictions)
    objects: list[ObjectScore] = []
    for sample in videos:

        def predicted(obj: int | str, frame_idx: int, sample: VideoSample = sample) -> np.ndarray:
            name = sample.frame_names[frame_idx]
            if sample.layout == "sav":
                path = pred_root / sample.name / str(obj) / f"{name}.png"
            else:
                path = pred_root / sample.name / f"{name}.png"
            if not path.is_file():
                raise DatasetError(f"missing prediction {path}")
            labels = read_labels(path)
            return labels > 0 if sample.layout == "sav" else labels == obj

        objects += score_video(sample, predicted)
    return VideoEvalReport(tuple(objects), videos[0].layout)


def track_and_score(
    predictor: Any,
    root: str | Path,
    names: Sequence[str] | None = None,
    out: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> VideoEvalReport:
    """Run the semi-supervised protocol with a video predictor and score it, frame by frame
    (no prediction is kept longer than its frame).

    Args:
        predictor: a :class:`~tijeras.sam2.video_predictor.SAM2VideoPredictor` built without
            post-processing, as Meta evaluates (``non_overlap_masks`` is set per layout here).
        root: the dataset.
        names: only these videos.
        out: also write the predicted masks there, in the dataset's layout.
        progress: called with 1 after each tracked frame.
    """
    import time
    from dataclasses import replace

    from ..video.tracker import VideoTracker

    videos = find_videos(root, names)
    objects: list[ObjectScore] = []
    frames_tracked = 0
    start = time.perf_counter()
    for sample in videos:
        config = replace(predictor.config, non_overlap_masks=sample.layout == "davis")
        tracker = VideoTracker(predictor.model, config)
        state = tracker.init_state(sample.frames, keep_all_memories=False)
        obj_ids = sample.objects()
        for obj in obj_ids:
            frame_idx, mask = sample.first_mask(obj)
            tracker.add_mask(state, frame_idx, obj, mask)
        scorer = _FrameScorer(sample, obj_ids)
        writers = _Writers(sample, out)
        for result in tracker.propagate(state):
            masks = result.masks()
            ids = list(result.obj_ids)
            if sample.layout == "davis":
                from ..video.export import label_image

                labels = label_image(masks, [int(i) for i in ids])  # type: ignore[arg-type]
                masks = np.stack([labels == int(i) for i in ids])  # type: ignore[arg-type]
                writers.labels(result.frame_idx, labels)
            else:
                writers.objects(result.frame_idx, ids, masks)
            scorer.add(result.frame_idx, dict(zip(ids, masks)))
            frames_tracked += 1
            if progress is not None:
                progress(1)
        state.frames.close()
        objects += scorer.finish(state.video_size)
    seconds = time.perf_counter() - start
    return VideoEvalReport(tuple(objects), videos[0].layout, seconds, frames_tracked)


class _FrameScorer:
    """J and F accumulated per object as predicted frames arrive."""

    def __init__(self, sample: VideoSample, obj_ids: Sequence[int | str]) -> None:
        self.sample = sample
        self.obj_ids = list(obj_ids)
        self.todo = {obj: dict(sample.ground_truth(obj)[1:-1]) for obj in self.obj_ids}
        self.js: dict[int | str, list[float]] = {obj: [] for obj in self.obj_ids}
        self.fs: dict[int | str, list[float]] = {obj: [] for obj in self.obj_ids}

    def add(self, frame_idx: int, masks: dict[Any, np.ndarray]) -> None:
        for obj in self.obj_ids:
            path = self.todo[obj].pop(frame_idx, None)
            if path is not None:
                self._score(obj, path, masks.get(obj))

    def _score(self, obj: int | str, path: Path, pred: np.ndarray | None) -> None:
        labels = read_labels(path)
        if self.sample.layout == "davis":
            gt, void = labels == obj, labels == VOID_LABEL
        else:
            gt, void = labels > 0, None
        if pred is None:
            pred = np.zeros(gt.shape, bool)
        if pred.shape != gt.shape:
            raise DatasetError(
                f"video {self.sample.name}: prediction {pred.shape} does not match the "
                f"annotation {path} {gt.shape}"
            )
        self.js[obj].append(region_j(gt, pred, void))
        self.fs[obj].append(boundary_f(gt, pred, void))

    def finish(self, size: tuple[int, int]) -> list[ObjectScore]:
        """Scores, counting frames never predicted (before an object's input) as empty."""
        out = []
        for obj in self.obj_ids:
            for path in self.todo[obj].values():
                self._score(obj, path, None)
            if self.js[obj]:
                out.append(
                    ObjectScore(
                        self.sample.name,
                        obj,
                        float(np.mean(self.js[obj])),
                        float(np.mean(self.fs[obj])),
                        len(self.js[obj]),
                    )
                )
        return out


class _Writers:
    """Predicted masks written in the dataset's layout (when an output folder is given)."""

    def __init__(self, sample: VideoSample, out: str | Path | None) -> None:
        self.sample = sample
        self.out = None if out is None else Path(out) / sample.name

    def labels(self, frame_idx: int, labels: np.ndarray) -> None:
        if self.out is not None:
            from ..video.export import PaletteWriter

            PaletteWriter(self.out).write(self.sample.frame_names[frame_idx], labels)

    def objects(self, frame_idx: int, ids: Sequence[Any], masks: np.ndarray) -> None:
        if self.out is not None:
            from ..video.export import PaletteWriter

            for obj, mask in zip(ids, masks):
                PaletteWriter(self.out / str(obj)).write(
                    self.sample.frame_names[frame_idx], mask.astype(np.uint8)
                )
