"""The training objective: the official Charbonnier loss."""

from __future__ import annotations

import torch


def charbonnier(output: torch.Tensor, target: torch.Tensor, eps: float = 1e-6, reduction: str = "sum") -> torch.Tensor:
    """sqrt((output - target)^2 + eps) over every element, summed (the official ``CharbonnierLoss``,
    the recipe's ``loss_reduction = "sum"``) or averaged (``"mean"``: the same gradients at any
    batch or crop size, divided by the element count)."""
    diff = output - target
    values = torch.sqrt(diff * diff + eps)
    return values.sum() if reduction == "sum" else values.mean()
