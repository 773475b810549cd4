"""The attributes and methods of Meta's ``SAM2Base`` that fine-tuning and tooling code reads.

Published SAM 2 training scripts and tools read the model's configuration through Meta's
attribute names (``directly_add_no_mem_embed``, ``num_feature_levels``, ``hidden_dim``...) and
call ``forward_image`` / ``_prepare_backbone_features`` to get the backbone's levels. They are
gathered here, derived from tijeras' typed config, so :class:`~tijeras.models.sam2.model.
Sam2Model` answers to them without carrying Meta's constructor flags. Shapes: B images, C
channels, level i is H_i x W_i (finest first).
"""

from __future__ import annotations

from typing import Any

import torch


class Sam2MetaNames:
    """Meta's ``SAM2Base`` names on a SAM 2 model (mixed into ``Sam2Model``)."""

    # Meta's released configurations set these; tijeras' models always behave so.
    directly_add_no_mem_embed = True
    multimask_output_in_sam = True

    config: Any
    sam_mask_decoder: Any
    image_encoder: Any

    @property
    def use_high_res_features_in_sam(self) -> bool:
        return bool(self.sam_mask_decoder.config.use_high_res_features)

    @property
    def num_feature_levels(self) -> int:
        """Backbone levels the decoder uses: 3 with the high-res features, else 1."""
        return 3 if self.use_high_res_features_in_sam else 1

    @property
    def sam_image_embedding_size(self) -> int:
        """Side of the image embedding grid (64 for a 1024 input)."""
        return int(self.config.embedding_size)

    @property
    def hidden_dim(self) -> int:
        return int(self.config.hidden_dim)

    @property
    def pred_obj_scores(self) -> bool:
        return bool(self.sam_mask_decoder.config.pred_obj_scores)

    @property
    def backbone_stride(self) -> int:
        return int(self.config.backbone_stride)

    @property
    def num_maskmem(self) -> int:
        return int(self.config.memory.num_maskmem)

    @property
    def mem_dim(self) -> int:
        return int(self.config.memory.mem_dim)

    def forward_image(self, img_batch: torch.Tensor) -> dict[str, Any]:
        """Meta's backbone output for B x 3 x S x S normalised images.

        Returns:
            ``backbone_fpn``: the neck's levels (B x C x H_i x W_i, finest first), the two
            finest projected by the decoder's ``conv_s0`` / ``conv_s1`` when high-res features
            are used; ``vision_pos_enc``: their sine position encodings (same shapes);
            ``vision_features``: the coarsest level (B x C x 64 x 64, without
            ``no_mem_embed``).
        """
        levels = self.image_encoder(img_batch)
        neck = self.image_encoder.neck
        pos = [
            neck.position_encoding(tuple(x.shape[-2:]), x.device).to(x.dtype).expand_as(x)
            for x in levels
        ]
        fpn = list(levels)
        if self.use_high_res_features_in_sam:
            fpn[0] = self.sam_mask_decoder.conv_s0(fpn[0])
            fpn[1] = self.sam_mask_decoder.conv_s1(fpn[1])
        return {"vision_features": levels[-1], "vision_pos_enc": pos, "backbone_fpn": fpn}

    def _prepare_backbone_features(
        self, backbone_out: dict[str, Any]
    ) -> tuple[dict[str, Any], list[torch.Tensor], list[torch.Tensor], list[tuple[int, int]]]:
        """The last ``num_feature_levels`` levels of :meth:`forward_image`'s output, flattened
        as Meta's memory code takes them: (the output, H_i*W_i x B x C features, their
        position encodings, the (H_i, W_i) sizes)."""
        fpn = backbone_out["backbone_fpn"]
        pos = backbone_out["vision_pos_enc"]
        if len(fpn) != len(pos) or len(fpn) < self.num_feature_levels:
            raise ValueError(
                f"backbone output has {len(fpn)} levels and {len(pos)} position encodings; "
                f"{self.num_feature_levels} of each are needed"
            )
        maps = fpn[-self.num_feature_levels :]
        encodings = pos[-self.num_feature_levels :]
        sizes = [(int(x.shape[-2]), int(x.shape[-1])) for x in encodings]
        feats = [x.flatten(2).permute(2, 0, 1) for x in maps]
        pos_embeds = [x.flatten(2).permute(2, 0, 1) for x in encodings]
        return dict(backbone_out), feats, pos_embeds, sizes
