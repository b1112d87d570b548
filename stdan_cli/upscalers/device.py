"""Where and in what precision an upscaler runs: ``--device``, ``--precision``, ``--threads``,
and how much memory one window may use there.

Every check asks the device the user chose (``cuda:1`` is asked about ``cuda:1``, not about
the current CUDA device).
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import torch

from stdan_cli.errors import OptionError, StdanError
from stdan_cli.model.slicing import CPU_SLICES, SlicePolicy
from stdan_cli.upscalers.device_names import parse_device
from stdan_cli.upscalers.precisions import PRECISIONS, Precision

GiB = 2**30
CPU_MEMORY_BUDGET = 4 * GiB  # one window on the CPU: measured peaks stay well inside it (docs/performance.md)
GPU_MEMORY_SHARE = 0.85  # of the memory the device reports free, after the model is loaded


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def resolve_device(spec: str = "auto") -> torch.device:
    """``auto`` (CUDA, then MPS, then CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (the PyTorch
    kinds of :data:`~stdan_cli.upscalers.device_names.DEVICE_KINDS`). ``cuda`` means the
    current CUDA device, named by its index."""
    parsed = parse_device(spec)
    if not parsed.kind.torch:
        raise OptionError(f"--device {parsed.name} is not a PyTorch device: {parsed.kind.help}")
    spec = str(parsed)
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise StdanError(f"device '{spec}' requested but CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise StdanError(f"device '{spec}' does not exist: {torch.cuda.device_count()} CUDA device(s) found")
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
    elif device.type == "mps":
        if not _mps_available():
            raise StdanError("device 'mps' requested but MPS is not available on this machine")
    return device


def _cuda_has_bf16(device: torch.device) -> bool:
    """bfloat16 tensor cores: compute capability 8.0 (Ampere) and later, asked of ``device``."""
    return torch.cuda.get_device_capability(device) >= (8, 0)


def _mps_has_bf16() -> bool:
    return torch.backends.mps.is_macos_or_newer(14, 0)


# /proc/cpuinfo flags that make bfloat16 matmuls native on a CPU, and their names for the user.
# oneDNN also runs bfloat16 on other AVX-512 CPUs, converting to float32 around each multiply,
# which is slower than float32 there.
NATIVE_BF16_FLAGS = {"amx_bf16": "AMX", "avx512_bf16": "AVX512-BF16"}
CPUINFO = Path("/proc/cpuinfo")


@functools.cache
def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags as Linux lists them in /proc/cpuinfo; empty where there is no
    such file (macOS, Windows) or it cannot be read."""
    try:
        text = CPUINFO.read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def cpu_native_bf16() -> str | None:
    """The feature that makes bfloat16 native on this CPU ("AMX", "AVX512-BF16"), or None: a
    flag of :data:`NATIVE_BF16_FLAGS`, and oneDNN's bfloat16 support, which bf16 layers need."""
    flags = cpu_flags()
    found = next((label for flag, label in NATIVE_BF16_FLAGS.items() if flag in flags), None)
    if found is None or not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return None
    return found


def auto_precision(device: torch.device) -> tuple[str, str]:
    """What ``--precision auto`` is on ``device``, and why (the run's summary says it).

    CUDA: bf16 from compute capability 8.0, else fp16. MPS: bf16 from macOS 14, else fp16.
    CPU: bf16 where bfloat16 is native (:func:`cpu_native_bf16`), else fp32. bf16 keeps the
    output within the relative L2 error of 1e-2 that tests/test_model_precision.py holds."""
    if device.type == "cuda":
        if _cuda_has_bf16(device):
            return "bf16", "auto: bfloat16 on this GPU"
        return "fp16", "auto: no bfloat16 on this GPU"
    if device.type == "mps":
        return ("bf16", "auto: bfloat16 on this macOS") if _mps_has_bf16() else ("fp16", "auto: no bfloat16 before macOS 14")
    native = cpu_native_bf16()
    if native is not None:
        return "bf16", f"auto: native bfloat16 on this CPU, {native}"
    return "fp32", "auto: no native bfloat16 on this CPU"


def resolve_precision(name: str, device: torch.device) -> Precision:
    """The precision ``name`` means on ``device`` (``auto`` resolved by :func:`auto_precision`,
    its row then saying why), or a one-line refusal."""
    if name not in PRECISIONS:
        raise OptionError(f"unknown precision '{name}'; use one of {', '.join(PRECISIONS)}")
    kind = device.type
    why = ""
    if name == "auto":
        name, why = auto_precision(device)
    if name == "fp16" and kind == "cpu":
        raise OptionError("--precision fp16 needs a GPU (it is very slow on CPU); use bf16 or fp32")
    if name == "tf32" and kind != "cuda":
        raise OptionError("--precision tf32 is for CUDA GPUs (Ampere and later); use fp32")
    if name == "bf16":
        if kind == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            raise OptionError("this CPU has no fast bfloat16 support; use --precision fp32")
        if kind == "cuda" and not _cuda_has_bf16(device):
            raise OptionError(f"{device} does not support bfloat16 (compute capability below 8.0); use fp16 or fp32")
        if kind == "mps" and not _mps_has_bf16():
            raise OptionError("bfloat16 on MPS needs macOS 14 or later; use --precision fp16 or fp32")
    return replace(PRECISIONS[name], why=why)


@contextlib.contextmanager
def tf32_allowed(allowed: bool) -> Iterator[None]:
    """CUDA matmuls and cuDNN convolutions may round float32 to TF32 during the block only if
    ``allowed`` (:attr:`Precision.tf32`); the process's previous settings are restored after it.

    TF32 stays off unless asked for: PyTorch lets cuDNN use it by default, which makes "fp32"
    convolutions on Ampere and later differ from the reference by about 1e-3. The flags are
    process-wide, so an upscaler sets them around its own calls and leaves the caller's as they were."""
    previous = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = allowed
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = previous


def memory_budget(device: torch.device, gib: float | None = None) -> int:
    """Bytes one window may use: ``gib`` when given (``--memory-budget``), else what the device
    has free (CUDA: ``mem_get_info``; MPS: the recommended maximum less what the driver holds),
    or :data:`CPU_MEMORY_BUDGET` on the CPU.

    The precision does not change it: bf16/fp16 compute the matmuls in low precision but keep
    activations in float32, and the measured peak is the same as fp32 (docs/performance.md)."""
    if gib is not None:
        return int(gib * GiB)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free * GPU_MEMORY_SHARE)
    if device.type == "mps":
        return int((torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory()) * GPU_MEMORY_SHARE)
    return CPU_MEMORY_BUDGET


def slice_policy(device: torch.device, budget_bytes: int) -> SlicePolicy:
    """How much of a window the network processes at once on ``device``: the CPU policy keeps
    temporaries cache-sized; a GPU takes every Swin window at once and lets STDFA and the
    deformable columns use an eighth of the memory budget each (the rest holds the features)."""
    if device.type == "cpu":
        return CPU_SLICES
    share = max(CPU_SLICES.stdfa_bytes, budget_bytes // 8)
    return SlicePolicy(swin_logit_bytes=None, stdfa_bytes=share, deform_column_bytes=share)


def check_threads(threads: int | None) -> None:
    """``--threads``: PyTorch's intra-op threads for the model's work (None: PyTorch's choice, all cores)."""
    if threads is not None and threads < 1:
        raise OptionError("--threads must be at least 1")


@contextlib.contextmanager
def intra_op_threads(threads: int | None) -> Iterator[None]:
    """PyTorch's intra-op thread count set to ``threads`` for the block, and the previous count
    restored after it (the count is process-wide: it must not leak into later work)."""
    if threads is None:
        yield
        return
    check_threads(threads)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
