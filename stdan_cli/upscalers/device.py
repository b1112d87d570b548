"""Where and in what precision an upscaler runs: ``--device``, ``--precision`` and ``--threads``."""

from __future__ import annotations

import torch

from stdan_cli.errors import OptionError, StdanError

PRECISIONS = ("fp32", "bf16", "fp16")
LOW_PRECISION_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def resolve_device(spec: str = "auto") -> torch.device:
    """``auto`` (CUDA, then MPS, then CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""
    spec = (spec or "auto").lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise OptionError(f"unknown device '{spec}'; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise StdanError(f"device '{spec}' requested but CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise StdanError(f"device '{spec}' does not exist: {torch.cuda.device_count()} CUDA device(s) found")
    elif device.type == "mps":
        if not _mps_available():
            raise StdanError("device 'mps' requested but MPS is not available on this machine")
    elif device.type != "cpu":
        raise OptionError(f"unsupported device '{spec}'; use auto, cpu, cuda, cuda:N or mps")
    return device


def check_precision(precision: str, device: torch.device) -> str:
    """Validate ``fp32``/``bf16``/``fp16`` for the device (fp16 is GPU-only: unusably slow on CPU)."""
    if precision not in PRECISIONS:
        raise OptionError(f"unknown precision '{precision}'; use one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type == "cpu":
        raise OptionError("--precision fp16 needs a GPU (it is very slow on CPU); use bf16 or fp32")
    if precision == "bf16" and device.type == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        raise OptionError("this CPU has no fast bfloat16 support; use --precision fp32")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise OptionError("this GPU does not support bfloat16; use --precision fp16 or fp32")
    return precision


def set_threads(threads: int | None) -> None:
    """``--threads``: PyTorch's intra-op threads (None leaves PyTorch's choice, all cores)."""
    if threads is not None:
        if threads < 1:
            raise OptionError("--threads must be at least 1")
        torch.set_num_threads(threads)
