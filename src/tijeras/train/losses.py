"""SAM's training losses: focal and dice on the masks (20:1) and MSE on the predicted IoU.

All functions take B x M x S x S logits and B x S x S targets with a B x S x S ``valid`` weight
(pixels outside the image or ignored count nothing) and compute in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

FOCAL_WEIGHT = 20.0
DICE_WEIGHT = 1.0
IOU_WEIGHT = 1.0


def focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor,
    alpha: float = 0.25,
    gamma: float = 2.0,
) -> torch.Tensor:
    """Sigmoid focal loss averaged over the valid pixels of each mask: B x M."""
    logits = logits.float()
    t = target[:, None].float().expand_as(logits)
    w = valid[:, None].float()
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, t, reduction="none")
    p_t = prob * t + (1 - prob) * (1 - t)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return (loss * w).sum(dim=(2, 3)) / w.sum(dim=(2, 3)).clamp_min(1.0)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """1 - soft Dice over the valid pixels of each mask: B x M."""
    prob = logits.float().sigmoid() * valid[:, None].float()
    t = target[:, None].float() * valid[:, None].float()
    inter = (prob * t).sum(dim=(2, 3))
    total = prob.sum(dim=(2, 3)) + t.sum(dim=(2, 3))
    return 1.0 - (2.0 * inter + 1.0) / (total + 1.0)


def mask_iou(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """IoU of the thresholded logits with the target over valid pixels: B x M (no gradient)."""
    with torch.no_grad():
        pred = logits > 0
        t = target[:, None].bool()
        v = valid[:, None].bool()
        inter = (pred & t & v).sum(dim=(2, 3)).float()
        union = ((pred | t) & v).sum(dim=(2, 3)).float()
        return torch.where(union > 0, inter / union.clamp_min(1.0), torch.ones_like(union))


def sam_loss(
    logits: torch.Tensor,
    iou_pred: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    """The loss of one decoder call.

    With several candidates (multimask) only the one with the lowest mask loss is trained
    (SAM's ambiguity-aware loss); the IoU head is trained on every candidate.

    Args:
        logits: B x M x S x S mask logits.
        iou_pred: B x M predicted IoU.
        target: B x S x S bool targets.
        valid: B x S x S bool.

    Returns:
        The scalar loss, its parts (detached: ``focal``, ``dice``, ``iou_mse``) and the
        actual IoU of each candidate (B x M).
    """
    focal = focal_loss(logits, target, valid)
    dice = dice_loss(logits, target, valid)
    combined = FOCAL_WEIGHT * focal + DICE_WEIGHT * dice
    best = combined.argmin(dim=1, keepdim=True)
    actual = mask_iou(logits, target, valid)
    iou_mse = F.mse_loss(iou_pred.float(), actual)
    loss = combined.gather(1, best).mean() + IOU_WEIGHT * iou_mse
    parts = {
        "focal": focal.gather(1, best).mean().detach(),
        "dice": dice.gather(1, best).mean().detach(),
        "iou_mse": iou_mse.detach(),
    }
    return loss, parts, actual
