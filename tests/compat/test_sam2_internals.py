"""Item: the SAM 2 internals that published fine-tuning and tooling code uses: the model's
Meta attribute names and ``forward_image``, the predictor's ``_prep_prompts``,
``_transforms`` and ``_bb_feat_sizes``, and ``from_pretrained`` / ``build_sam2_hf`` finding
weights in the caches (with a clear message when they are absent)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.parity import assert_close, perturb

from tijeras.errors import CheckpointError, TijerasError
from tijeras.sam2 import SAM2AutomaticMaskGenerator, SAM2ImagePredictor, build_sam2
from tijeras.sam2.build import build_sam2_hf

pytest.importorskip("sam2", reason="compares with Meta's sam2 package")
pytest.importorskip("hydra", reason="Meta's sam2 configs need hydra")

pytestmark = pytest.mark.parity
CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"
NAMES = (
    "directly_add_no_mem_embed",
    "use_high_res_features_in_sam",
    "num_feature_levels",
    "sam_image_embedding_size",
    "hidden_dim",
    "multimask_output_in_sam",
    "pred_obj_scores",
    "image_size",
    "backbone_stride",
    "num_maskmem",
    "mem_dim",
)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import instantiate

    if not GlobalHydra.instance().is_initialized():
        initialize_config_module("sam2", version_base="1.2")
    torch.manual_seed(0)
    ref = instantiate(compose(config_name=CONFIG).model, _recursive_=True).eval()
    perturb(ref)
    path = tmp_path_factory.mktemp("sam2") / "sam2.1_hiera_tiny.pt"
    torch.save({"model": ref.state_dict()}, path)
    # built as Meta's config says, without its builder's post-processing overrides
    return ref, build_sam2(CONFIG, path, device="cpu", apply_postprocessing=False), path


def test_model_answers_to_metas_names(models):
    ref, ours, _ = models
    for name in NAMES:
        assert getattr(ours, name) == getattr(ref, name), name


@pytest.mark.slow
def test_forward_image_matches(models):
    ref, ours, _ = models
    x = torch.randn(1, 3, 1024, 1024, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        r, o = ref.forward_image(x), ours.forward_image(x)
        assert_close(o["vision_features"], r["vision_features"], "vision_features")
        for key in ("backbone_fpn", "vision_pos_enc"):
            assert len(o[key]) == len(r[key]) == 3
            for i, (a, b) in enumerate(zip(o[key], r[key])):
                assert_close(a, b, f"{key}[{i}]")
        _, r_feats, r_pos, r_sizes = ref._prepare_backbone_features(r)
        _, o_feats, o_pos, o_sizes = ours._prepare_backbone_features(o)
    assert o_sizes == r_sizes
    for a, b in zip(o_feats + o_pos, r_feats + r_pos):
        assert_close(a, b, "flattened backbone features")


def test_prep_prompts_transforms_and_feature_sizes(models):
    from sam2.sam2_image_predictor import SAM2ImagePredictor as MetaPredictor

    ref, ours, _ = models
    rp, op = MetaPredictor(ref), SAM2ImagePredictor(ours)
    assert op._bb_feat_sizes == rp._bb_feat_sizes
    rp._orig_hw = op._orig_hw = [(200, 300)]  # what set_image records; no encoding needed
    prompts = [
        (np.array([[150, 100], [20, 30]]), np.array([1, 0]), np.array([10, 20, 200, 150])),
        (np.array([[[0.5, 0.5]]]), np.array([[1]]), None),
    ]
    for (coords, labels, box), normalize in zip(prompts, (True, False)):
        r = rp._prep_prompts(coords, labels, box=box, mask_logits=None, normalize_coords=normalize)
        o = op._prep_prompts(coords, labels, box=box, mask_logits=None, normalize_coords=normalize)
        for a, b in zip(o, r):
            assert (a is None) == (b is None)
            if b is not None:
                assert a.dtype == b.dtype and a.shape == b.shape
                assert_close(a, b, "prepared prompt")
    image = (np.random.default_rng(0).random((50, 70, 3)) * 255).astype(np.uint8)
    assert_close(op._transforms(image), rp._transforms(image), "input image", rel_tol=1e-3)
    boxes = torch.tensor([[10.0, 20.0, 60.0, 45.0]])
    assert torch.equal(
        op._transforms.transform_boxes(boxes, normalize=True, orig_hw=(50, 70)),
        rp._transforms.transform_boxes(boxes, normalize=True, orig_hw=(50, 70)),
    )


@pytest.fixture
def cache(models, tmp_path, monkeypatch):
    """tijeras' cache holding the perturbed file under the official name."""
    monkeypatch.setenv("TIJERAS_CACHE", str(tmp_path))
    (tmp_path / "sam2.1_hiera_tiny.pt").symlink_to(models[2])
    return tmp_path


def test_from_pretrained_finds_the_cached_weights(models, cache):
    _, ours, _ = models
    predictor = SAM2ImagePredictor.from_pretrained(
        "facebook/sam2.1-hiera-tiny", device="cpu", max_hole_area=8.0, mask_threshold=0.0
    )
    assert predictor.max_hole_area == 8.0
    for (name, a), b in zip(predictor.model.state_dict().items(), ours.state_dict().values()):
        assert torch.equal(a, b), name
    generator = SAM2AutomaticMaskGenerator.from_pretrained(
        "facebook/sam2.1-hiera-tiny",
        device="cpu",
        apply_postprocessing=False,
        hydra_overrides_extra=[],
        points_per_side=4,
        min_mask_region_area=10,
    )
    assert generator.options.points_per_side == 4 and generator.predictor.max_hole_area == 10
    with pytest.raises(TypeError, match="points_per_sid"):
        SAM2AutomaticMaskGenerator.from_pretrained(
            "sam2.1-hiera-tiny", device="cpu", points_per_sid=4
        )


def test_absent_weights_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TIJERAS_CACHE", str(tmp_path))
    try:
        import huggingface_hub.constants
    except ImportError:  # then only tijeras' cache is looked in
        pass
    else:
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(CheckpointError) as info:
        build_sam2_hf("facebook/sam2-hiera-small", device="cpu")
    message = str(info.value)
    assert "no weights for 'facebook/sam2-hiera-small' (sam2-hiera-small)" in message
    assert "tijeras download sam2-hiera-small" in message and "sam2_hiera_small.pt" in message


def test_weights_in_the_hugging_face_cache_are_used(models, tmp_path, monkeypatch):
    """A file Meta's ``build_sam2_hf`` downloaded earlier is found, offline."""
    pytest.importorskip("huggingface_hub", reason="reads the Hugging Face cache")
    monkeypatch.setenv("TIJERAS_CACHE", str(tmp_path / "empty"))
    hf = tmp_path / "hf"
    repo = hf / "models--facebook--sam2.1-hiera-tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    (repo / "snapshots" / ("0" * 40)).mkdir(parents=True)
    (repo / "snapshots" / ("0" * 40) / "sam2.1_hiera_tiny.pt").symlink_to(models[2])
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(hf))
    model = build_sam2_hf("facebook/sam2.1-hiera-tiny", device="cpu")
    assert torch.equal(model.no_mem_embed, models[1].no_mem_embed)


def test_default_device_is_cuda_as_metas(models, cache):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(TijerasError, match="CUDA is not available"):
        SAM2ImagePredictor.from_pretrained("facebook/sam2.1-hiera-tiny")
