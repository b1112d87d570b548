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
from stdan_cli.upscalers.device import intra_op_threads, memory_budget, slice_policy, tf32_allowed
from stdan_cli.upscalers.precisions import PRECISIONS
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
    tf32: bool = False  # CUDA may round float32 to TF32 during a call (restored after it; --precision tf32)
    precision_why: str = ""  # why --precision auto chose ``precision`` here, for the run's summary

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
        with intra_op_threads(self.threads), tf32_allowed(self.tf32):
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
    """Eager PyTorch: :func:`build_stdan_placed` at ``place("torch", device, precision)``."""
    from stdan_cli.upscalers.engines import place

    return build_stdan_placed(weights, place("torch", str(device), precision))


def build_stdan_engine(weights: str | os.PathLike | None, placement, threads: int | None = None) -> StdanUpscaler:
    """STDAN whose two parts run in the engine of ``placement``: :func:`build_stdan_placed`."""
    return build_stdan_placed(weights, placement, threads)


def build_stdan_placed(weights: str | os.PathLike | None, placement, threads: int | None = None) -> StdanUpscaler:
    """STDAN from the checkpoint ``weights`` (a path, a registry name, or None for the default)
    at ``placement`` (a :class:`stdan_cli.upscalers.engines.Placement`: backend, device and
    resolved precision), the one builder for every backend.

    The precision is applied one way for all of them, by
    :func:`~stdan_cli.model.precision.use_low_precision_matmuls` with the precision's dtype:
    eager PyTorch and ``compile`` run the network converted in place (``compile`` then compiles
    that network's repeated blocks); ONNX engines export a converted copy (export.precision_model),
    OpenVINO lowers the float32 file itself. Where the precision is not fp32 the float32 network
    stays as the fallback for windows whose output is not finite. TF32 is allowed during the
    upscaler's calls only where the precision asks for it."""
    from stdan_cli.upscalers.engines import build_engine
    from stdan_cli.weights import resolve_weights

    path = resolve_weights(weights)
    device = placement.device
    chosen = PRECISIONS[placement.precision]
    loaded = load_model(path, device=device)
    net = loaded.model
    net.set_slice_policy(slice_policy(device, memory_budget(device)))
    sha256 = state_dict_sha256(net)  # the engines' key and the job's record: the weights as loaded
    descriptor, name, engine, fallback = loaded.descriptor, "stdan", None, None
    backend = placement.backend
    runs_in_torch = not backend.exports  # eager and compile run this network; exporters export a copy
    if chosen.matmul_dtype is not None:
        fallback = copy.deepcopy(net) if runs_in_torch else net
        if runs_in_torch:
            use_low_precision_matmuls(net, chosen.matmul_dtype)
    if backend.engine:
        engine = build_engine(placement, net, threads, weights_sha256=sha256)
        name = f"stdan ({backend.name} {placement.label})"
        if backend.bytes_per_pixel is not None:  # the engine's unsliced graphs: smaller tiles
            descriptor = replace(descriptor, bytes_per_pixel=backend.bytes_per_pixel)
    return StdanUpscaler(net, descriptor, device, chosen.name, name=name, fallback=fallback, engine=engine,
                         weights_sha256=sha256, tf32=chosen.tf32, precision_why=placement.precision_why)
