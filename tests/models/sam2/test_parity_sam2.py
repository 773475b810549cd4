"""Parity of the SAM 2.1 image models with Meta's ``sam2`` on perturbed random weights.

Meta's model is built from its Hydra config as its ``build_sam2`` does (with the same
post-processing overrides), every parameter is perturbed with seeded noise, and the state_dict
is saved the way Meta's files are (under ``model``) and loaded strictly through
``tijeras.sam2.build_sam2``. The default suite runs every comparison on a Hiera at toy sizes
(``SMALL_TRUNK``, the rest of the model SAM 2.1-T's), the slow one again on Hiera-T. Tolerances: features, low-res logits, IoU and object scores within
1e-4 of the largest magnitude; masks identical except pixels whose reference logit is within
1e-4 of the threshold; everything mode matched one to one (mask IoU >= 0.99, scores within 1e-3).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

sam2_pkg = pytest.importorskip("sam2", reason="parity needs Meta's sam2 package")
pytest.importorskip("hydra", reason="Meta's sam2 configs need hydra")

from helpers.parity import assert_close, assert_masks_match, encode_once, perturb
from helpers.records import KEEP_ALL, compare
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import OmegaConf
from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator as MetaGenerator
from sam2.sam2_image_predictor import SAM2ImagePredictor as MetaPredictor

from tijeras.catalog import get_spec
from tijeras.errors import CheckpointError
from tijeras.models.sam2.model import Sam2Model
from tijeras.sam2 import SAM2AutomaticMaskGenerator, SAM2ImagePredictor, build_sam2
from tijeras.sam2.build import resolve_config

pytestmark = pytest.mark.parity
POSTPROCESSING = [
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=true",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta=0.05",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh=0.98",
]
CONFIGS = {
    "sam2.1-hiera-tiny": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "sam2.1-hiera-small": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "sam2.1-hiera-base-plus": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "sam2.1-hiera-large": "configs/sam2.1/sam2.1_hiera_l.yaml",
    "sam2-hiera-tiny": "configs/sam2/sam2_hiera_t.yaml",
    "sam2-hiera-small": "configs/sam2/sam2_hiera_s.yaml",
    "sam2-hiera-base-plus": "configs/sam2/sam2_hiera_b+.yaml",
    "sam2-hiera-large": "configs/sam2/sam2_hiera_l.yaml",
}


SMALL_TRUNK = [
    "++model.image_encoder.trunk.embed_dim=32",
    "++model.image_encoder.trunk.stages=[1,1,2,1]",
    "++model.image_encoder.trunk.global_att_blocks=[3]",
    "++model.image_encoder.neck.backbone_channel_list=[256,128,64,32]",
]
"""Hiera at toy sizes (the ``small`` parity models; everything else is SAM 2.1-T's)."""


def meta_model(config: str, overrides: tuple[str, ...] | list[str] = ()) -> torch.nn.Module:
    GlobalHydra.instance().clear()
    initialize_config_module("sam2", version_base="1.2")
    cfg = compose(config_name=config, overrides=POSTPROCESSING + list(overrides))
    OmegaConf.resolve(cfg)
    return instantiate(cfg.model, _recursive_=True)


@pytest.fixture(scope="module", params=["small", pytest.param("hiera-t", marks=pytest.mark.slow)])
def checkpoint(request, tmp_path_factory):
    """Meta's SAM 2.1 with perturbed random weights and their file: Hiera at toy sizes in the
    default suite, Hiera-T in the slow one."""
    torch.manual_seed(0)
    small = request.param == "small"
    ref = meta_model(CONFIGS["sam2.1-hiera-tiny"], SMALL_TRUNK if small else ()).eval()
    perturb(ref)
    path = tmp_path_factory.mktemp("ckpt") / f"perturbed_sam2.1_{request.param}.pt"
    torch.save({"model": ref.state_dict()}, path)
    return ref, path


def our_model(path) -> torch.nn.Module:
    """tijeras' model of ``path``: the user's builder for Hiera-T, the small config else."""
    if "small" not in path.name:
        return build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", path, device="cpu")
    from tijeras.models.sam2.config import HIERA_TINY, SAM2_1_HIERA_TINY

    trunk = replace(HIERA_TINY, embed_dim=32, stages=(1, 1, 2, 1), global_att_blocks=(3,))
    model = Sam2Model(replace(SAM2_1_HIERA_TINY, trunk=trunk)).eval()
    model.load_state_dict(torch.load(path, weights_only=True)["model"], strict=True)
    return model


@pytest.fixture(scope="module")
def models(checkpoint):
    ref, path = checkpoint
    return ref, our_model(path)


@pytest.fixture(scope="module")
def predictors(models, truck_image):
    ref, ours = models
    rp, op = MetaPredictor(ref), SAM2ImagePredictor(ours)
    rp.set_image(truck_image)
    op.set_image(truck_image)
    return rp, op


def test_backbone_features_match(predictors):
    rp, op = predictors
    assert_close(op.get_image_embedding(), rp.get_image_embedding(), "image embedding")
    for i, (ours, ref) in enumerate(
        zip(op._features["high_res_feats"], rp._features["high_res_feats"])
    ):
        assert_close(ours, ref, f"high-res level {i}")


POINT = np.array([[500, 375]])
CASES = {
    "one point": {"point_coords": POINT, "point_labels": np.array([1])},
    "points with a negative": {
        "point_coords": np.array([[500, 375], [1125, 625], [300, 800]]),
        "point_labels": np.array([1, 1, 0]),
    },
    "box": {"box": np.array([425, 600, 700, 875])},
    "box and point": {
        "box": np.array([425, 600, 700, 875]),
        "point_coords": POINT,
        "point_labels": np.array([0]),
    },
    "batch of points": {
        "point_coords": np.array([[[500, 375]], [[1125, 625]], [[200, 900]]]),
        "point_labels": np.array([[1], [1], [1]]),
    },
    "batch of boxes": {"box": np.array([[425, 600, 700, 875], [100, 100, 900, 700]])},
}


def run_both(rp, op, ref_model, ours_model, **prompt):
    scores = []
    hook = ref_model.sam_mask_decoder.register_forward_hook(
        lambda module, args, out: scores.append(out[3])
    )
    decoded = []
    decode = ours_model.decode
    ours_model.decode = lambda *a, **k: decoded.append(decode(*a, **k)) or decoded[-1]
    try:
        ref = rp.predict(**prompt, return_logits=True)
        ours = op.predict(**prompt)
    finally:
        hook.remove()
        del ours_model.decode
    return ref, ours, scores[0], decoded[0].object_scores


@pytest.mark.parametrize("multimask", [True, False], ids=["multimask", "single"])
@pytest.mark.parametrize("case", list(CASES))
def test_prompts_match(predictors, models, case, multimask):
    rp, op = predictors
    (r_logits, r_iou, r_low), (o_masks, o_iou, o_low), r_obj, o_obj = run_both(
        rp, op, *models, **CASES[case], multimask_output=multimask
    )
    assert o_masks.dtype == np.float32 and o_masks.shape == r_logits.shape
    assert_close(o_low, r_low, "low-res logits")
    assert_close(o_iou, r_iou, "IoU")
    assert_close(o_obj, r_obj, "object scores")
    assert_masks_match(o_masks, r_logits)


def test_mask_input_matches(predictors, models):
    rp, op = predictors
    _, _, r_low = rp.predict(**CASES["one point"], multimask_output=False)
    prompt = dict(**CASES["one point"], mask_input=r_low, multimask_output=False)
    (r_logits, r_iou, r_low2), (o_masks, o_iou, o_low2), r_obj, o_obj = run_both(
        rp, op, *models, **prompt
    )
    assert_close(o_low2, r_low2, "low-res logits")
    assert_close(o_iou, r_iou, "IoU")
    assert_close(o_obj, r_obj, "object scores")
    assert_masks_match(o_masks, r_logits)


def test_normalized_coords_and_logits(predictors):
    rp, op = predictors
    h, w = rp._orig_hw[0]
    prompt = {"point_coords": POINT / np.array([w, h]), "point_labels": np.array([1])}
    r_logits, _, _ = rp.predict(**prompt, normalize_coords=False, return_logits=True)
    o_logits, _, _ = op.predict(**prompt, normalize_coords=False, return_logits=True)
    assert_close(o_logits, r_logits, "logits")


def test_predict_batch_matches(models, truck_image):
    ref, ours = models
    small = np.array(Image.fromarray(truck_image).resize((300, 200)))
    images = [small, np.ascontiguousarray(small[::-1])]
    rp, op = MetaPredictor(ref), SAM2ImagePredictor(ours)
    rp.set_image_batch(images)
    op.set_image_batch(images)
    assert_close(op.get_image_embedding(), rp.get_image_embedding(), "batch embeddings")
    prompts = {
        "point_coords_batch": [POINT // 6, POINT // 5],
        "point_labels_batch": [np.array([1]), np.array([1])],
        "box_batch": [None, np.array([20, 30, 200, 150])],
    }
    # Meta indexes box_batch per image; a None entry means no box for that image
    r_masks, r_iou, r_low = rp.predict_batch(**prompts, return_logits=True)
    o_masks, o_iou, o_low = op.predict_batch(**prompts)
    for i in range(2):
        assert_close(o_low[i], r_low[i], f"image {i} low-res logits")
        assert_close(o_iou[i], r_iou[i], f"image {i} IoU")
        assert_masks_match(o_masks[i], r_masks[i])


@pytest.fixture(scope="module")
def encoding_once(checkpoint):
    """Both models, each running its trunk once per photo for all the everything tests."""
    _, path = checkpoint
    small = "small" in path.name
    ref = meta_model(CONFIGS["sam2.1-hiera-tiny"], SMALL_TRUNK if small else ()).eval()
    ref.load_state_dict(torch.load(path, weights_only=True)["model"])
    ours = our_model(path)
    encode_once(ref.image_encoder.trunk)
    encode_once(ours.image_encoder.trunk)
    return ref, ours


@pytest.mark.parametrize(
    "options",
    [dict(points_per_side=4, **KEEP_ALL), dict(points_per_side=3, use_m2m=True, **KEEP_ALL)],
    ids=["keep-all", "m2m"],
)
def test_everything_mode_matches(encoding_once, everything_photo, options):
    ref_model, ours = encoding_once
    ref = MetaGenerator(ref_model, **options).generate(everything_photo)
    mine = SAM2AutomaticMaskGenerator(ours, **options).generate(everything_photo)
    compare(ref, mine)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_state_dict_layout_matches(name):
    ref = meta_model(CONFIGS[name])  # Meta's trunk cannot be built on the meta device
    with torch.device("meta"):
        ours = Sam2Model(get_spec(name).config)
    expected = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert found == expected


def test_version_mismatch_is_named(checkpoint, tmp_path):
    _, path = checkpoint
    with pytest.raises(CheckpointError) as info:
        build_sam2("sam2_hiera_t.yaml", path, device="cpu")
    assert str(info.value) == f"{path}: " + (
        "this checkpoint looks like a SAM 2.1 file, but model sam2-hiera-tiny is SAM 2.0 "
        "(SAM 2.1 files have no_obj_embed_spatial, obj_ptr_tpos_proj.weight); "
        "load it as sam2.1-hiera-*"
    )
    old = tmp_path / "sam2_hiera_tiny.pt"
    torch.save({"model": Sam2Model(get_spec("sam2-hiera-tiny").config).state_dict()}, old)
    with pytest.raises(CheckpointError, match=r"looks like a SAM 2\.0 file, but model "):
        build_sam2("sam2.1-hiera-tiny", old, device="cpu")


@pytest.mark.parametrize(
    "alias, name",
    [
        ("configs/sam2.1/sam2.1_hiera_t.yaml", "sam2.1-hiera-tiny"),
        ("sam2.1_hiera_s.yaml", "sam2.1-hiera-small"),
        ("sam2.1_hiera_b+", "sam2.1-hiera-base-plus"),
        ("/somewhere/configs/sam2.1/sam2.1_hiera_l.yaml", "sam2.1-hiera-large"),
        ("configs/sam2/sam2_hiera_t.yaml", "sam2-hiera-tiny"),
        ("sam2_hiera_b+.yaml", "sam2-hiera-base-plus"),
    ],
)
def test_config_names_resolve(alias, name):
    assert resolve_config(alias).name == name
