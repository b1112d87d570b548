"""Choosing where and how a window of frames is upscaled: device, precision, model.

:func:`build_upscaler` returns a callable that maps one temporal window of low-resolution
frames to its outputs; ``upscale`` and ``eval`` both run their frames through it, so the two
commands share one definition of ``--model``, ``--weights``, ``--device``, ``--precision``
and ``--threads``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Hashable, Protocol

import torch
import torch.nn.functional as F

from stdan_cli.errors import StdanError
from stdan_cli.model import FeatureCache, ModelDescriptor, load_model, output_positions, upscale_window
from stdan_cli.model.precision import use_low_precision_matmuls

MODELS = ("stdan", "bicubic")
PRECISIONS = ("fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(spec: str = "auto") -> torch.device:
    """``auto`` (CUDA, then MPS, then CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""
    spec = (spec or "auto").lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise StdanError(f"unknown device '{spec}'; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise StdanError(f"device '{spec}' requested but CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise StdanError(f"device '{spec}' does not exist: {torch.cuda.device_count()} CUDA device(s) found")
    elif device.type == "mps":
        if not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
            raise StdanError("device 'mps' requested but MPS is not available on this machine")
    elif device.type != "cpu":
        raise StdanError(f"unsupported device '{spec}'; use auto, cpu, cuda, cuda:N or mps")
    return device


def check_precision(precision: str, device: torch.device) -> str:
    """Validate ``fp32``/``bf16``/``fp16`` for the device (fp16 is GPU-only: unusably slow on CPU)."""
    if precision not in PRECISIONS:
        raise StdanError(f"unknown precision '{precision}'; use one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type == "cpu":
        raise StdanError("--precision fp16 needs a GPU (it is very slow on CPU); use bf16 or fp32")
    if precision == "bf16" and device.type == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        raise StdanError("this CPU has no fast bfloat16 support; use --precision fp32")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise StdanError("this GPU does not support bfloat16; use --precision fp16 or fp32")
    return precision


def set_threads(threads: int | None) -> None:
    if threads is not None:
        if threads < 1:
            raise StdanError("--threads must be at least 1")
        torch.set_num_threads(threads)


class Upscaler(Protocol):
    """Maps one window (B, N, 3, H, W) float32 RGB in [0, 1] (CPU) to (B, 2N-1, 3, sH, sW)
    float32 on the CPU, unclamped, in the order [in0, mid, in1, mid, ...].

    For a stream of overlapping windows, ``skip_outputs=k`` returns (and computes) only
    outputs k.. (the earlier ones came from the previous window), and calls with the same
    ``stream`` key (e.g. a tile position) encode a frame shared with the previous window once.
    ``inputs_only=True`` returns (and computes) only the outputs at even positions, the input
    frames' times (:func:`stdan_cli.model.output_positions`).
    """

    name: str
    descriptor: ModelDescriptor
    device: torch.device
    precision: str

    def __call__(
        self, frames: torch.Tensor, skip_outputs: int = 0, stream: Hashable = None, inputs_only: bool = False
    ) -> torch.Tensor: ...


@dataclass
class StdanUpscaler:
    model: torch.nn.Module
    descriptor: ModelDescriptor
    device: torch.device
    precision: str
    name: str = "stdan"
    caches: dict = field(default_factory=dict)  # stream key -> FeatureCache

    def __call__(
        self, frames: torch.Tensor, skip_outputs: int = 0, stream: Hashable = None, inputs_only: bool = False
    ) -> torch.Tensor:
        cache = self.caches.setdefault(stream, FeatureCache())
        x = frames.to(self.device, torch.float32)
        out = upscale_window(self.model, x, skip_outputs, cache, inputs_only=inputs_only)
        return out.float().cpu()


@dataclass
class BicubicUpscaler:
    """Baseline: bicubic x4 in space (PyTorch/OpenCV-style kernel, a = -0.75) and the average of
    neighbouring upscaled frames in time. Needs no weights."""

    descriptor: ModelDescriptor
    device: torch.device
    precision: str = "fp32"
    name: str = "bicubic"

    def __call__(
        self, frames: torch.Tensor, skip_outputs: int = 0, stream: Hashable = None, inputs_only: bool = False
    ) -> torch.Tensor:
        b, n, c, h, w = frames.shape
        s = self.descriptor.scale
        x = frames.to(self.device, torch.float32).reshape(b * n, c, h, w)
        up = F.interpolate(x, scale_factor=s, mode="bicubic", align_corners=False).view(b, n, c, s * h, s * w)
        out = torch.empty(b, 2 * n - 1, c, s * h, s * w, device=self.device)
        out[:, 0::2] = up
        out[:, 1::2] = (up[:, :-1] + up[:, 1:]) / 2
        return out[:, output_positions(n, skip_outputs, inputs_only)].cpu()


BICUBIC_DESCRIPTOR = ModelDescriptor(
    architecture="bicubic",
    config=None,
    num_params=0,
    scale=4,
    size_multiple=1,
    tile_overlap=2,  # the bicubic kernel reaches 2 LR pixels
    bytes_per_pixel=7 * 16 * 3 * 4 * 2,  # 7 outputs at 16x the pixels, float32, plus a copy
)


def resolve_weights_path(weights: str | os.PathLike | None) -> Path:
    """A checkpoint path for ``--weights`` (a registry name, a path, or None for the default)."""
    if weights is not None and Path(weights).is_file():
        return Path(weights)
    from stdan_cli.weights import resolve_weights

    return resolve_weights(weights)


def build_upscaler(
    model: str = "stdan",
    weights: str | os.PathLike | None = None,
    device: str = "auto",
    precision: str = "fp32",
    threads: int | None = None,
) -> Upscaler:
    """The upscaler behind ``--model/--weights/--device/--precision/--threads``."""
    set_threads(threads)
    dev = resolve_device(device)
    if model == "bicubic":
        if precision != "fp32":
            raise StdanError("--model bicubic runs in fp32 only")
        return BicubicUpscaler(BICUBIC_DESCRIPTOR, dev)
    if model != "stdan":
        raise StdanError(f"unknown model '{model}'; use one of {', '.join(MODELS)}")
    check_precision(precision, dev)
    path = resolve_weights_path(weights)
    loaded = load_model(path, device=dev)
    if precision != "fp32":
        use_low_precision_matmuls(loaded.model, _DTYPES[precision])
    return StdanUpscaler(loaded.model, loaded.descriptor, dev, precision)
