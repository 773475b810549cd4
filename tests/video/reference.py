"""Helpers of the video tests: Meta's reference predictor on perturbed random weights,
the same weights in tijeras, the bedroom clip, and comparison helpers.

Meta's model is built from its Hydra config as its ``build_sam2_video_predictor`` does (with
the post-processing overrides), every parameter is perturbed with seeded noise and the
object-score head is made more sensitive and shifted so objects are present on some frames and
absent on others (random weights otherwise predict near-constant scores, which would leave the
occlusion path untested or make the masks trivially equal). Meta's hole filling
needs a CUDA extension; the reference gets the same 8-connected components from OpenCV, so
both sides fill holes as Meta's GPU build does.

``small`` models keep SAM 2's structure (every module, 7 memories, object pointers, the
occlusion path) with a reduced trunk, 2 memory-attention layers and a 128 x 128 input, so a
whole 40-frame propagation runs in seconds; the full Hiera-T models run in ``slow`` tests.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Any

import numpy as np
import torch

CLIP = ("sam2_bedroom_clip", "frames")
META_CONFIGS = {
    "2.1": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "2.0": "configs/sam2/sam2_hiera_t.yaml",
}
POSTPROCESSING = [
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=true",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta=0.05",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh=0.98",
    "++model.binarize_mask_from_pts_for_mem_enc=true",
    "++model.fill_hole_area=8",
]
SMALL_OVERRIDES = [
    "++model.image_size=128",
    "++model.image_encoder.trunk.embed_dim=32",
    "++model.image_encoder.trunk.stages=[1,1,2,1]",
    "++model.image_encoder.trunk.global_att_blocks=[3]",
    "++model.image_encoder.neck.backbone_channel_list=[256,128,64,32]",
    "++model.memory_attention.num_layers=2",
    "++model.memory_attention.layer.dim_feedforward=256",
]
# (version, small) -> (seed, object-score shift): weights where the object is present on some
# frames and absent on others, and tracking is numerically stable (with larger weights random
# networks amplify rounding differences from frame to frame, Meta's own included)
# (seed, extra noise, object-score head scale, its shift)
WEIGHTS = {
    ("2.1", True): (3, 0.04, 3.0, -3.04),
    ("2.0", True): (2, 0.04, 3.0, -4.42),
    ("2.1", False): (0, 0.0, 1.0, 0.0),
    ("2.0", False): (0, 0.0, 1.0, 0.0),
}


def small_config(version: str) -> Any:
    """tijeras' config of the ``small`` test model of a SAM 2 version."""
    from tijeras.models.sam2.config import HIERA_TINY, SAM2_1_HIERA_TINY, SAM2_HIERA_TINY

    base = SAM2_1_HIERA_TINY if version == "2.1" else SAM2_HIERA_TINY
    trunk = replace(HIERA_TINY, embed_dim=32, stages=(1, 1, 2, 1), global_att_blocks=(3,))
    memory = replace(base.memory, attention_layers=2, attention_ffn_dim=256)
    return replace(base, image_size=128, trunk=trunk, memory=memory)


def full_config(version: str) -> Any:
    from tijeras.models.sam2.config import SAM2_1_HIERA_TINY, SAM2_HIERA_TINY

    return SAM2_1_HIERA_TINY if version == "2.1" else SAM2_HIERA_TINY


def _connected_components(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Meta's ``get_connected_components`` (8-connected labels and per-pixel areas) by OpenCV."""
    import cv2

    m = mask.to(torch.uint8).cpu().numpy()
    labels = np.zeros(m.shape, np.int32)
    counts = np.zeros(m.shape, np.int32)
    for i in range(m.shape[0]):
        _, lab, stats, _ = cv2.connectedComponentsWithStats(m[i, 0], connectivity=8)
        area = stats[:, cv2.CC_STAT_AREA].copy()
        area[0] = 0
        labels[i, 0] = lab
        counts[i, 0] = area[lab]
    return torch.from_numpy(labels), torch.from_numpy(counts)


@contextlib.contextmanager
def meta_hole_filling():
    """Meta's hole filling on the CPU (its CUDA extension replaced by OpenCV)."""
    from sam2.utils import misc

    saved = misc.get_connected_components
    misc.get_connected_components = _connected_components
    try:
        yield
    finally:
        misc.get_connected_components = saved


def meta_video_model(
    version: str,
    small: bool,
    seed: int | None = None,
    overrides: list[str] | None = None,
    fill_hole_area: int = 8,
) -> torch.nn.Module:
    """Meta's SAM2VideoPredictor (post-processing on, holes of up to ``fill_hole_area``
    low-res pixels filled), perturbed random weights; ``overrides`` are further Hydra
    overrides (tracking options)."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    extra = list(overrides or [])
    overrides = ["++model._target_=sam2.sam2_video_predictor.SAM2VideoPredictor"]
    post = [o for o in POSTPROCESSING if "fill_hole_area" not in o]
    post.append(f"++model.fill_hole_area={fill_hole_area}")
    overrides += post + (SMALL_OVERRIDES if small else []) + extra
    GlobalHydra.instance().clear()
    initialize_config_module("sam2", version_base="1.2")
    cfg = compose(config_name=META_CONFIGS[version], overrides=overrides)
    OmegaConf.resolve(cfg)
    default_seed, noise, head_scale, shift = WEIGHTS[(version, small)]
    seed = default_seed if seed is None else seed
    torch.manual_seed(seed)
    model = instantiate(cfg.model, _recursive_=True).eval()
    perturb(model, seed, noise, head_scale, shift)
    return model


def perturb(
    model: torch.nn.Module, seed: int, noise: float, head_scale: float, shift: float
) -> None:
    """Seeded noise on every parameter (0.02, then ``noise``); the object-score head scaled and
    shifted so objects come and go."""
    head = model.sam_mask_decoder.pred_obj_score_head.layers[-1]
    with torch.no_grad():
        for scale, offset in ((0.02, 0), (noise, 1)):
            if scale == 0:
                continue
            gen = torch.Generator().manual_seed(seed + offset)
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=gen) * scale)
            if offset == 0:
                head.bias.add_(3.0)
        head.weight.mul_(head_scale)
        head.bias.add_(shift)


def our_predictor(meta: torch.nn.Module, version: str, small: bool, **tracking: Any) -> Any:
    """tijeras' predictor with Meta's weights loaded strictly."""
    from tijeras.models.sam2.model import Sam2Model
    from tijeras.models.sam2.video_config import tracking_config
    from tijeras.sam2.video_predictor import SAM2VideoPredictor

    config = small_config(version) if small else full_config(version)
    model = Sam2Model(config).eval()
    model.load_state_dict(meta.state_dict(), strict=True)
    return SAM2VideoPredictor(model, tracking_config(config, **tracking))


# ----------------------------------------------------------------------------- comparison
REL_TOL = 1e-4


def assert_logits_close(ours: torch.Tensor, ref: torch.Tensor, what: str) -> None:
    """B x 1 x H x W logits: per object, absent (-1024) where the reference is, else within
    ``REL_TOL`` of the object's largest reference magnitude."""
    ours, ref = ours.detach().float().cpu(), ref.detach().float().cpu()
    assert ours.shape == ref.shape, f"{what}: shape {tuple(ours.shape)} != {tuple(ref.shape)}"
    for i in range(ref.shape[0]):
        r, o = ref[i], ours[i]
        scale = max(float(r.abs().max()), 1e-6)
        err = float((o - r).abs().max())
        assert err <= REL_TOL * scale, (
            f"{what}, object row {i}: max diff {err:.3g} > {REL_TOL} x {scale:.3g}"
        )


def meta_scores(state: dict, obj_idx: int) -> dict[int, float]:
    """Meta's stored object-score logits of one object, by frame."""
    out = {}
    per_obj = state["output_dict_per_obj"][obj_idx]
    for store in ("non_cond_frame_outputs", "cond_frame_outputs"):
        for frame, result in per_obj[store].items():
            out[frame] = float(result["object_score_logits"].reshape(-1)[0])
    return out


def our_scores(state: Any, obj_id: Any) -> dict[int, float]:
    track = state.objects[obj_id]
    out = {f: float(r.object_score.reshape(-1)[0]) for f, r in track.non_cond.items()}
    out.update({f: float(r.object_score.reshape(-1)[0]) for f, r in track.cond.items()})
    return out


def assert_scores_close(ours: Any, ref: dict, obj_ids: list) -> None:
    for idx, obj_id in enumerate(obj_ids):
        r, o = meta_scores(ref, idx), our_scores(ours, obj_id)
        assert sorted(o) == sorted(r), f"object {obj_id}: frames {sorted(o)} != {sorted(r)}"
        for frame in r:
            scale = max(abs(r[frame]), 1.0)
            assert abs(o[frame] - r[frame]) <= REL_TOL * scale, (
                f"object {obj_id} frame {frame}: score {o[frame]:.6g} != {r[frame]:.6g}"
            )


def run_both(ref_call, our_call) -> tuple[Any, Any]:
    """Call Meta's side (with its hole filling) and ours."""
    with meta_hole_filling():
        r = ref_call()
    return r, our_call()


def compare_propagation(ref_pred, ref_state, our_pred, our_state, **kwargs) -> int:
    """Propagate on both sides with the same arguments; compare every frame. Returns the
    number of frames compared."""
    with meta_hole_filling():
        ref = [
            (f, ids, m.clone()) for f, ids, m in ref_pred.propagate_in_video(ref_state, **kwargs)
        ]
    ours = list(our_pred.propagate_in_video(our_state, **kwargs))
    assert [f for f, _, _ in ours] == [f for f, _, _ in ref], "different frames"
    for (f, r_ids, r_m), (_, o_ids, o_m) in zip(ref, ours):
        assert list(o_ids) == list(r_ids)
        assert_logits_close(o_m, r_m, f"frame {f}")
    assert_scores_close(our_state, ref_state, list(ref_state["obj_ids"]))
    return len(ref)
