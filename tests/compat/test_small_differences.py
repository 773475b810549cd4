"""Item: the small differences user code notices: float ``bbox`` / ``crop_box`` where Meta's
generators give floats, no "NumPy array is not writable" warning for a PIL image, no
pycocotools ``DeprecationWarning`` in everything mode, and ``device="cuda"`` without CUDA is an
error (never a silent fall back to the CPU)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from compat.compare import assert_records_same, record_types
from compat.harness import TINY_KEY, tiny_registered
from PIL import Image

from tijeras.automatic.generator import SamAutomaticMaskGenerator as NativeGenerator
from tijeras.automatic.records import MaskRecords
from tijeras.compat.segment_anything import SamAutomaticMaskGenerator, SamPredictor
from tijeras.compat.segment_anything import sam_model_registry as registry
from tijeras.errors import TijerasError
from tijeras.sam2 import SAM2AutomaticMaskGenerator, SAM2ImagePredictor, build_sam2

CROPS = {
    "points_per_side": 4,
    "pred_iou_thresh": 0.0,
    "stability_score_thresh": 0.5,
    "stability_score_offset": 0.05,
    "box_nms_thresh": 1.0,
    "crop_n_layers": 1,
    "crop_nms_thresh": 1.0,
}


@pytest.mark.parity
def test_record_types_follow_metas_generator(backends, tiny_checkpoint, small_photo):
    """Meta's crop-layer records hold floats when a crop or a batch had no mask (its empty
    columns are float tensors, which turn the concatenated column into floats)."""
    records = {}
    for side in ("official", "tijeras"):
        with tiny_registered(backends, side) as sa:
            model = sa.sam_model_registry[TINY_KEY](checkpoint=str(tiny_checkpoint))
            records[side] = sa.SamAutomaticMaskGenerator(model, **CROPS).generate(small_photo)
    ref = records["official"]
    assert ref and isinstance(ref[0]["crop_box"][0], float)  # the case is exercised
    assert_records_same(records["tijeras"], ref, "records")
    # tijeras' own generator keeps whole pixels (what COCO exports want).
    model = registry["test-tiny"](checkpoint=str(tiny_checkpoint))
    native = NativeGenerator(model, **CROPS).generate(small_photo)
    assert all(isinstance(v, int) for r in native for v in r["bbox"] + r["crop_box"])


def test_sam2_records_are_float32_values_as_metas():
    """Meta's SAM 2 generator turns every column into float32 before writing records."""
    generator = SAM2AutomaticMaskGenerator.__new__(SAM2AutomaticMaskGenerator)
    generator.output_mode = "coco_rle"
    rle = {"size": [4, 4], "counts": "04L4"}
    data = MaskRecords(
        rles=[rle],
        iou=torch.tensor([0.5]),
        stability=torch.tensor([0.9]),
        points=torch.tensor([[1.1, 2.0]], dtype=torch.float64),
        boxes=torch.tensor([[0, 1, 2, 3]]),
        crop_boxes=torch.tensor([[0, 0, 4, 4]]),
    )
    record = generator.to_output(data)[0]
    assert record["bbox"] == [0.0, 1.0, 2.0, 2.0] and isinstance(record["bbox"][0], float)
    assert record["crop_box"] == [0.0, 0.0, 4.0, 4.0]
    assert record["point_coords"] == [[float(np.float32(1.1)), 2.0]]
    assert record_types(record)["area"] is int


@pytest.fixture(scope="module")
def pil_image():
    pixels = (np.random.default_rng(0).random((40, 60, 3)) * 255).astype(np.uint8)
    return Image.fromarray(pixels)


def test_pil_images_give_no_warning(pil_image):
    torch.manual_seed(0)
    sam = registry["test-tiny"]()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predictor = SamPredictor(sam)
        predictor.set_image(np.asarray(pil_image))  # a read-only view of the PIL image
        SAM2ImagePredictor(build_sam2("sam2.1-hiera-tiny", None, device="cpu")).set_image(pil_image)
        SamAutomaticMaskGenerator(sam, points_per_side=2).generate(np.asarray(pil_image))


@pytest.mark.parametrize("output_mode", ["binary_mask", "uncompressed_rle", "coco_rle"])
def test_everything_mode_gives_no_deprecation_warning(output_mode, pil_image):
    torch.manual_seed(0)
    sam = registry["test-tiny"]()
    image = np.array(pil_image)
    generator = SamAutomaticMaskGenerator(
        sam,
        points_per_side=3,
        pred_iou_thresh=0.0,
        stability_score_thresh=0.0,
        box_nms_thresh=1.0,
        min_mask_region_area=30,
        output_mode=output_mode,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        records = generator.generate(image)
    assert records
    if output_mode != "binary_mask":
        from pycocotools import mask as mask_utils

        binary = SamAutomaticMaskGenerator(
            sam,
            points_per_side=3,
            pred_iou_thresh=0.0,
            stability_score_thresh=0.0,
            box_nms_thresh=1.0,
            min_mask_region_area=30,
        ).generate(image)
        for got, want in zip(records, binary):
            rle = got["segmentation"]
            if output_mode == "uncompressed_rle":
                assert isinstance(rle["counts"], list)
                rle = mask_utils.frPyObjects(rle, *rle["size"])
            np.testing.assert_array_equal(mask_utils.decode(rle).astype(bool), want["segmentation"])


def test_cuda_without_a_gpu_is_an_error_in_every_builder(tmp_path, monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    from tijeras.compat.sam2.build_sam import build_sam2 as compat_build_sam2

    with pytest.raises(TijerasError, match="'cuda': CUDA is not available"):
        compat_build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml")
    with pytest.raises(TijerasError, match="'cuda:0': CUDA is not available"):
        build_sam2("sam2.1-hiera-tiny", None, device="cuda:0")
    sam = registry["test-tiny"]()  # Meta's builders take no device: the model is built on the CPU
    assert sam.device == torch.device("cpu")
    with pytest.raises((AssertionError, RuntimeError)):  # moving it is torch's error, as Meta's
        sam.to(device="cuda")
