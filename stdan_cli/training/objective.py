"""The training objective: the official Charbonnier loss."""

from __future__ import annotations

import torch


def charbonnier(output: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """mean(sqrt((output - target)^2 + eps)), over every element (the official ``cb`` criterion)."""
    diff = output - target
    return torch.mean(torch.sqrt(diff * diff + eps))
