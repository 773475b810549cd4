"""Client programs run on the official packages and on tijeras, unchanged.

Each program in ``clients/`` imports the official names (``segment_anything``, ``sam2``,
``samgeo``). It is run twice in this process, once with those names bound to the official
packages and once to tijeras (``tijeras.compat.install_aliases``), on the same perturbed
random weights; everything it returns or writes must agree in structure, types and values
(:mod:`compat.compare`). On the official side, SAM 2's hole and speck clean-up gets a
connected-components function (SciPy) in place of its CUDA extension, so it computes what it
computes on a GPU instead of skipping the step.
"""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from compat.compare import assert_same
from compat.harness import TINY_KEY, tiny_registered

pytestmark = pytest.mark.parity
CLIENTS = Path(__file__).parent / "clients"


def run_client(name: str, function: str, *args: Any, **kwargs: Any) -> Any:
    """Run ``function`` of the client program ``clients/<name>.py``, loaded afresh."""
    namespace = runpy.run_path(str(CLIENTS / f"{name}.py"), run_name=f"client_{name}")
    return namespace[function](*args, **kwargs)


def on_both(backends, client: str, function: str, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """(tijeras' result, the official result) of one client function."""
    results = {}
    for side in ("official", "tijeras"):
        with tiny_registered(backends, side):
            torch.manual_seed(0)
            results[side] = run_client(client, function, *args, **kwargs)
    return results["tijeras"], results["official"]


def test_predictor_notebook(backends, tiny_checkpoint, photo_file):
    ours, ref = on_both(
        backends, "sam_predictor_notebook", "main", photo_file, TINY_KEY, str(tiny_checkpoint)
    )
    assert_same(ours, ref)
    np.testing.assert_array_equal(ours["stored"][0], ours["point"][0])


def test_automatic_notebook(backends, tiny_checkpoint, small_photo):
    ours, ref = on_both(
        backends, "sam_automatic_notebook", "main", small_photo, TINY_KEY, str(tiny_checkpoint)
    )
    assert len(ref["masks"]) > 3 and len(ref["masks_crops"]) > 3  # the comparison has content
    assert_same(ours, ref)


def _read_outputs(folder: Path) -> dict[str, Any]:
    import cv2

    out: dict[str, Any] = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.suffix == ".png":
            out[key] = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 0
        elif path.suffix == ".csv":
            out[key] = [row.split(",") for row in path.read_text().splitlines()]
    return out


def _assert_csv_same(ours: list[list[str]], ref: list[list[str]]) -> None:
    assert ours[0] == ref[0]
    assert len(ours) == len(ref)
    for o_row, r_row in zip(ours[1:], ref[1:]):
        for o, r in zip(o_row, r_row):
            assert ("." in o) == ("." in r), f"{o!r} and {r!r} are not written alike"
            assert abs(float(o) - float(r)) <= 1e-3 * max(1.0, abs(float(r))) + 2, (o, r)


@pytest.mark.parametrize(
    "flags",
    [
        pytest.param(
            [
                "--points-per-side",
                "6",
                "--pred-iou-thresh",
                "0",
                "--stability-score-thresh",
                "0.5",
                "--stability-score-offset",
                "0.05",
                "--box-nms-thresh",
                "1.0",
            ],
            id="grid",
        ),
        pytest.param(
            [
                "--points-per-side",
                "4",
                "--pred-iou-thresh",
                "0",
                "--stability-score-thresh",
                "0.5",
                "--stability-score-offset",
                "0.05",
                "--box-nms-thresh",
                "1.0",
                "--crop-n-layers",
                "1",
                "--crop-nms-thresh",
                "1.0",
                "--min-mask-region-area",
                "50",
            ],
            id="crops-and-small-regions",
        ),
    ],
)
def test_amg_script(backends, tiny_checkpoint, photo_file, tmp_path, flags):
    outputs = {}
    for side in ("official", "tijeras"):
        with tiny_registered(backends, side):
            argv = [
                "--input",
                str(photo_file.parent),
                "--output",
                str(tmp_path / side),
                "--model-type",
                TINY_KEY,
                "--checkpoint",
                str(tiny_checkpoint),
                *flags,
            ]
            assert run_client("sam_amg_script", "main", argv) == 0
        outputs[side] = _read_outputs(tmp_path / side)
    ours, ref = outputs["tijeras"], outputs["official"]
    assert sorted(ours) == sorted(ref) and len(ref) > 3
    csv = "truck/metadata.csv"
    _assert_csv_same(ours.pop(csv), ref.pop(csv))
    assert_same(ours, ref)


@pytest.fixture(scope="module")
def samgeo_installed(backends):
    with backends.use("official"):
        pytest.importorskip("samgeo", reason="needs segment-geospatial (a test-only dependency)")


@pytest.mark.parametrize("function", ["automatic", "prompts", "geo_predictor"])
def test_samgeo(backends, samgeo_installed, tiny_checkpoint, small_photo, function):
    ours, ref = on_both(
        backends, "samgeo_clients", function, small_photo, TINY_KEY, tiny_checkpoint
    )
    assert_same(ours, ref)


def reference_connected_components(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """What Meta's CUDA ``get_connected_components`` returns, computed with SciPy: labels
    and component areas (8-connectivity) of N x 1 x H x W masks, 0 on the background."""
    from scipy import ndimage

    planes = mask.to(torch.uint8).cpu().numpy()[:, 0]
    labels = np.zeros(planes.shape, np.int32)
    areas = np.zeros(planes.shape, np.int32)
    for i, plane in enumerate(planes):
        lab, _ = ndimage.label(plane, structure=np.ones((3, 3), int))
        counts = np.bincount(lab.ravel())
        counts[0] = 0
        labels[i], areas[i] = lab, counts[lab]
    return torch.from_numpy(labels[:, None]), torch.from_numpy(areas[:, None])


def on_both_sam2(backends, monkeypatch, client: str, *args: Any) -> tuple[Any, Any]:
    results = {}
    for side in ("official", "tijeras"):
        with backends.use(side):
            if side == "official":
                import sam2.utils.misc

                monkeypatch.setattr(
                    sam2.utils.misc, "get_connected_components", reference_connected_components
                )
            torch.manual_seed(0)
            results[side] = run_client(client, "main", *args)
            monkeypatch.undo()
    return results["tijeras"], results["official"]


@pytest.mark.slow
def test_sam2_image_notebook(backends, monkeypatch, sam2_checkpoint, small_photo):
    ours, ref = on_both_sam2(
        backends, monkeypatch, "sam2_image_notebook", small_photo, str(sam2_checkpoint)
    )
    assert_same(ours, ref)


@pytest.mark.slow
def test_sam2_automatic_notebook(backends, monkeypatch, sam2_checkpoint, small_photo):
    ours, ref = on_both_sam2(
        backends, monkeypatch, "sam2_automatic_notebook", small_photo, str(sam2_checkpoint)
    )
    assert len(ref["masks"]) > 3
    assert_same(ours, ref)
