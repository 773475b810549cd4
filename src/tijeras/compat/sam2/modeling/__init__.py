"""``sam2.modeling``: ``sam2_base.SAM2Base``, tijeras' SAM 2 model under Meta's class name."""
