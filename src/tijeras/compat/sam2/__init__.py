"""Meta's ``sam2`` package, backed by tijeras: the same module tree and names.

``build_sam``, ``sam2_image_predictor``, ``automatic_mask_generator``,
``sam2_video_predictor``, ``modeling.sam2_base``, ``utils.transforms``, ``utils.amg`` and
``utils.misc`` hold Meta's public names (``build_sam2``, ``build_sam2_hf``,
``SAM2ImagePredictor``, ``SAM2AutomaticMaskGenerator``, ``SAM2VideoPredictor``, ``SAM2Base``,
``SAM2Transforms``...). As in Meta's package, the top-level module itself exports nothing;
unlike it, importing it does not initialise Hydra (there are no YAML configs).

Every module of this tree imports tijeras by its absolute name and only re-exports, so it may
be loaded again under the official name without creating a second copy of any class.
"""
