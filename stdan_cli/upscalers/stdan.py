"""The STDAN network as an upscaler."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Hashable

import torch

from stdan_cli.model import FeatureCache, ModelDescriptor, load_model, upscale_window
from stdan_cli.model.precision import use_low_precision_matmuls
from stdan_cli.upscalers.device import LOW_PRECISION_DTYPES, check_precision


@dataclass
class StdanUpscaler:
    model: torch.nn.Module
    descriptor: ModelDescriptor
    device: torch.device
    precision: str
    name: str = "stdan"
    caches: dict = field(default_factory=dict)  # cache key (a tile's index) -> FeatureCache

    def __call__(
        self, frames: torch.Tensor, skip_outputs: int = 0, cache_key: Hashable = None, inputs_only: bool = False
    ) -> torch.Tensor:
        cache = self.caches.setdefault(cache_key, FeatureCache())
        x = frames.to(self.device, torch.float32)
        out = upscale_window(self.model, x, skip_outputs, cache, inputs_only=inputs_only)
        return out.float().cpu()


def build_stdan(weights: str | os.PathLike | None, device: torch.device, precision: str) -> StdanUpscaler:
    """Load the checkpoint ``weights`` (a path, a registry name, or None for the default)."""
    from stdan_cli.weights import resolve_weights

    check_precision(precision, device)
    net = load_model(resolve_weights(weights), device=device)
    if precision in LOW_PRECISION_DTYPES:
        use_low_precision_matmuls(net, LOW_PRECISION_DTYPES[precision])
    return StdanUpscaler(net, net.descriptor, device, precision)
