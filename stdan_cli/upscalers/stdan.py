"""The STDAN network as an upscaler."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field, replace
from typing import Hashable, Sequence

import torch

from stdan_cli.model import FeatureCache, ModelDescriptor, load_model, upscale_window
from stdan_cli.model.loader import state_dict_sha256
from stdan_cli.model.precision import use_low_precision_matmuls
from stdan_cli.upscalers.device import apply_tf32, intra_op_threads, memory_budget, resolve_precision, slice_policy
from stdan_cli.upscalers.transfer import to_device


@dataclass
class StdanUpscaler:
    model: torch.nn.Module
    descriptor: ModelDescriptor
    device: torch.device
    precision: str
    name: str = "stdan"
    fallback: torch.nn.Module | None = None  # the float32 model, for windows low precision cannot represent
    caches: dict = field(default_factory=dict)  # cache key (a tile's index) -> FeatureCache
    redone: int = 0  # windows redone in float32
    threads: int | None = None  # PyTorch's intra-op threads during a call (None: PyTorch's choice)
    weights_sha256: str | None = None  # of the weights as loaded; computed from ``model`` when not given

    def __post_init__(self) -> None:
        if self.weights_sha256 is None:
            self.weights_sha256 = state_dict_sha256(self.model)
    engine: object | None = None  # a prepared engine running the parts instead of ``model`` (--backend)

    @property
    def notices(self) -> list[str]:
        lines = list(getattr(self.engine, "notices", []))
        if self.redone:
            lines.append(f"{self.redone} window(s) redone in fp32: their {self.precision} output was not finite")
        return lines

    def reset(self) -> None:
        """Forget cached features (the tiles changed)."""
        self.caches.clear()

    def __call__(
        self,
        frames: torch.Tensor,
        skip_outputs: int = 0,
        cache_key: Hashable = None,
        inputs_only: bool = False,
        frame_indices: Sequence[int] | None = None,
    ) -> torch.Tensor:
        with intra_op_threads(self.threads):
            return self._upscale(frames, skip_outputs, cache_key, inputs_only, frame_indices)

    def _upscale(self, frames, skip_outputs, cache_key, inputs_only, frame_indices) -> torch.Tensor:
        cache = self.caches.setdefault(cache_key, FeatureCache())
        x = to_device(frames, self.device)
        out = upscale_window(self.engine or self.model, x, skip_outputs, cache, inputs_only, frame_indices)
        if self.fallback is not None and not torch.isfinite(out).all():
            # fp16 overflows where float32 does not: this window again in float32, and its
            # features replace the cached ones for the windows that follow.
            cache = self.caches[cache_key] = FeatureCache()
            out = upscale_window(self.fallback, x, skip_outputs, cache, inputs_only, frame_indices)
            self.redone += 1
        return out.float()


def build_stdan(weights: str | os.PathLike | None, device: torch.device, precision: str) -> StdanUpscaler:
    """Load the checkpoint ``weights`` (a path, a registry name, or None for the default)."""
    from stdan_cli.weights import resolve_weights

    chosen = resolve_precision(precision, device)
    apply_tf32(chosen)
    loaded = load_model(resolve_weights(weights), device=device)
    net = loaded.model
    net.set_slice_policy(slice_policy(device, memory_budget(device)))
    sha256 = state_dict_sha256(net)  # before any precision change
    fallback = None
    if chosen.matmul_dtype is not None:
        fallback = copy.deepcopy(net)
        use_low_precision_matmuls(net, chosen.matmul_dtype)
    return StdanUpscaler(net, loaded.descriptor, device, chosen.name, fallback=fallback, weights_sha256=sha256)


def build_stdan_engine(weights: str | os.PathLike | None, placement, threads: int | None = None) -> StdanUpscaler:
    """STDAN whose two parts run in the engine of ``placement`` (a
    :class:`stdan_cli.upscalers.engines.Placement`); the float32 eager model stays as the fallback for
    windows whose fp16 output is not finite, and as what the engines are exported from."""
    from stdan_cli.upscalers.engines import build_engine
    from stdan_cli.weights import resolve_weights

    path = resolve_weights(weights)
    device = placement.device
    loaded = load_model(path, device=device)
    net = loaded.model
    net.set_slice_policy(slice_policy(device, memory_budget(device)))
    sha256 = state_dict_sha256(net)  # the engines' key and the job's record: the weights as loaded
    engine = build_engine(placement, net, threads, weights_sha256=sha256)
    fallback = net if placement.precision != "fp32" else None
    name = f"stdan ({placement.backend.name} {placement.label})"
    descriptor = loaded.descriptor
    if placement.backend.bytes_per_pixel is not None:  # the engine's unsliced graphs: smaller tiles
        descriptor = replace(descriptor, bytes_per_pixel=placement.backend.bytes_per_pixel)
    return StdanUpscaler(net, descriptor, device, placement.precision, name=name, fallback=fallback,
                         engine=engine, weights_sha256=sha256)
