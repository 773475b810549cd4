"""SAM's interactive training simulation: first prompts and corrective clicks.

Everything here works on the low-res frame of the decoder (the padded input square / 4, 256 x
256 for SAM): targets ``gt`` (B x S x S bool) and ``valid`` (B x S x S bool: inside the image
and not ignored). Point coordinates are returned in the input frame (1024 for SAM), where one
low-res cell covers ``cell`` x ``cell`` input pixels. All sampling uses the given
``torch.Generator``, which lives on the tensors' device.
"""

from __future__ import annotations

import torch

BOX_NOISE_FRACTION = 0.1
"""Standard deviation of the box-corner noise, as a fraction of the box side (SAM: 10%)."""
BOX_NOISE_MAX = 20.0
"""Largest box-corner shift in input pixels (SAM: 20)."""


def sample_cells(
    region: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """One cell drawn uniformly from each B x S x S bool region.

    Returns:
        B x 2 (row, col) indices (int64) and B bool: whether the region had any cell.
    """
    b, s, _ = region.shape
    draws = torch.rand((b, s * s), generator=generator, device=region.device)
    draws = torch.where(region.reshape(b, -1), draws, torch.full_like(draws, -1.0))
    flat = draws.argmax(dim=1)
    found = region.reshape(b, -1).any(dim=1)
    return torch.stack([flat // s, flat % s], dim=1), found


def cells_to_points(cells: torch.Tensor, cell: int, generator: torch.Generator) -> torch.Tensor:
    """B x 2 (row, col) cells -> B x 2 (x, y) input-frame points, uniform inside each cell."""
    offset = torch.rand(cells.shape, generator=generator, device=cells.device) * cell
    yx = cells.float() * cell + offset
    return yx.flip(-1)


def first_points(
    gt: torch.Tensor, cell: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """A foreground point drawn uniformly from each object: B x 1 x 2 coords, B x 1 labels."""
    cells, _ = sample_cells(gt, generator)
    coords = cells_to_points(cells, cell, generator)
    labels = torch.ones((gt.shape[0], 1), dtype=torch.int64, device=gt.device)
    return coords[:, None, :], labels


def noisy_boxes(
    boxes: torch.Tensor, limits: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Tight boxes with SAM's corner noise (std 10% of the side, at most 20 px per corner).

    Args:
        boxes: B x 4 (x0, y0, x1, y1) in the input frame.
        limits: B x 2 (w, h) of the resized images; noisy boxes are clipped to them.
    """
    wh = (boxes[:, 2:] - boxes[:, :2]).clamp_min(1.0).repeat(1, 2)
    noise = torch.randn(boxes.shape, generator=generator, device=boxes.device)
    shift = (noise * BOX_NOISE_FRACTION * wh).clamp(-BOX_NOISE_MAX, BOX_NOISE_MAX)
    noisy = boxes + shift
    upper = limits.repeat(1, 2).to(noisy.dtype)
    noisy = torch.minimum(noisy.clamp_min(0.0), upper)
    x0 = torch.minimum(noisy[:, 0], noisy[:, 2] - 1)
    y0 = torch.minimum(noisy[:, 1], noisy[:, 3] - 1)
    return torch.stack([x0, y0, noisy[:, 2], noisy[:, 3]], dim=1)


def corrective_points(
    pred: torch.Tensor,
    gt: torch.Tensor,
    valid: torch.Tensor,
    cell: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A click drawn uniformly from each object's error region (SAM's training clicks).

    A cell the prediction misses gives a foreground click (label 1), a cell it wrongly covers a
    background click (label 0); an object without error gets a padding point (label -1).

    Args:
        pred: B x S x S bool current prediction.
        gt: B x S x S bool target.
        valid: B x S x S bool cells that count.

    Returns:
        B x 1 x 2 coords (x, y, input frame) and B x 1 int64 labels.
    """
    error = (pred != gt) & valid
    cells, found = sample_cells(error, generator)
    coords = cells_to_points(cells, cell, generator)
    b = gt.shape[0]
    label = gt.reshape(b, -1).gather(1, (cells[:, 0] * gt.shape[2] + cells[:, 1])[:, None])
    labels = torch.where(found[:, None], label.long(), torch.full_like(label.long(), -1))
    coords = torch.where(found[:, None], coords, torch.zeros_like(coords))
    return coords[:, None, :], labels


def schedule(n_points: int, generator: torch.Generator) -> list[bool]:
    """Which iterations after the first add a click (True) or only refine (False).

    SAM: ``n_points`` iterations that each add a sampled click, one refinement-only iteration
    inserted at a random place among them and one at the end (when ``n_points`` > 0).
    """
    if n_points <= 0:
        return []
    steps = [True] * n_points
    where = int(torch.randint(0, n_points + 1, (1,), generator=generator, device=generator.device))
    steps.insert(where, False)
    return [*steps, False]
