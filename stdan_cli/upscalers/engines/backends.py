"""The backends behind ``--backend``: what each needs installed, where it runs, in which
precisions, and the one rule that resolves ``auto``.

A backend is a description (:class:`Backend`); the device a run uses is resolved from
``--device`` by :func:`place`, which refuses, in one line, a backend that is not installed or
cannot run on the device asked for.

``auto`` is eager PyTorch. The rule: an engine is chosen only where a measurement showed it
faster than eager once its preparation and its memory are counted, and none has. On this
project's 2-core AVX2 CPU (official configuration, fp32, 2 threads, quiet machine,
``benchmarks/bench_backends.py``): eager 15.9 s per 64x112 window and 75.2 s per 128x224;
ONNX Runtime 17.1 s and 75.4 s after a 64 s export; OpenVINO 13.9 s and 57.7 s (1.15x, 1.30x)
after that export and 40 s of compiling, but with about 12 times eager's memory per pixel
(unsliced graphs), so the same memory gives it smaller tiles: with 10 GB, tiles of 169 px
against eager's 597 px, whose 24 px overlaps make it compute 1.98 times a large frame's pixels
against eager's 1.20 (arithmetic from the measured memory, not a run): 1.65 times the work,
more than its 1.3x gains. ``torch.compile`` of the whole network did not finish compiling in 30 minutes;
``compile`` compiles the repeated blocks only (:mod:`stdan_cli.upscalers.engines.regional`). No GPU has been measured yet
(``benchmarks/gpu_check.py`` prints the engine rows that would decide).
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stdan_cli.errors import OptionError, StdanError
from stdan_cli.upscalers.precisions import PRECISIONS

if TYPE_CHECKING:  # the table is read by --help, which must not load PyTorch
    import torch


class BackendUnavailable(StdanError):
    """The backend's package is not installed, or cannot run on the chosen device."""

    exit_code = 2


@dataclass(frozen=True)
class Backend:
    name: str
    help: str
    modules: tuple[str, ...]  # Python modules it needs
    install: str  # what to install when they are missing
    devices: tuple[str, ...]  # the --device kinds it runs on
    precisions: tuple[str, ...]  # the --precision values it accepts (before auto is resolved)
    engine: bool  # True: the network's parts run in a prepared engine; False: eager PyTorch
    # Peak memory of one window per input pixel in this backend's graphs, for choosing tiles;
    # None: the model's own (ModelDescriptor.bytes_per_pixel). Traced and exported graphs are
    # unsliced (model/slicing.py), so they hold every step's temporaries at once: measured on the
    # official configuration, fp32, CPU, as the growth of peak RSS from a 64x112 to a 128x224
    # window (benchmarks/bench_backends.py), rounded up; eager PyTorch grows by 26 KB per pixel.
    bytes_per_pixel: int | None = None

    def installed(self) -> bool:
        return all(importlib.util.find_spec(m) is not None for m in self.modules)


TORCH_PRECISIONS = tuple(PRECISIONS)  # eager PyTorch's, compile's too
# compile runs its compiled blocks unsliced (all Swin windows at once), so its memory is taken
# from eager PyTorch run unsliced: 50 KB per pixel measured, rounded up.
COMPILE_BYTES_PER_PIXEL = 60_000

BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend("auto", "eager PyTorch (no engine has been measured faster once its preparation and memory count)",
                (), "", ("cpu", "cuda", "mps"), TORCH_PRECISIONS, False),
        Backend("torch", "eager PyTorch", (), "", ("cpu", "cuda", "mps"), TORCH_PRECISIONS, False),
        Backend("compile", "torch.compile of the network's repeated blocks (Swin blocks, alignment), "
                "compiled before the run; any tile size",
                (), "", ("cpu", "cuda"), TORCH_PRECISIONS, True, COMPILE_BYTES_PER_PIXEL),
        Backend("onnxruntime", "ONNX Runtime (--device cpu; cuda with onnxruntime-gpu, TensorRT first when "
                "installed; dml: DirectML; mps: CoreML)", ("onnxruntime", "onnx"), 'pip install "onnx>=1.15" "onnxruntime>=1.17" (or onnxruntime-gpu for '
                "CUDA and TensorRT, onnxruntime-directml for DirectML)",
                ("cpu", "cuda", "dml", "mps"), ("auto", "fp32", "fp16"), True, 250_000),  # measured 243 KB
        Backend("openvino", "OpenVINO (--device cpu, gpu[.N] for Intel GPUs, npu)", ("openvino", "onnx"),
                'pip install "onnx>=1.15" "openvino>=2024.0"', ("cpu", "gpu", "npu"), ("auto", "fp32", "fp16"), True,
                350_000),  # measured 343 KB
    )
}


@dataclass(frozen=True)
class Placement:
    """Where one run executes: the backend, the torch device the pipeline's tensors live on,
    the runtime's own device name, and the resolved precision."""

    backend: Backend
    device: "torch.device"
    target: str  # ORT: cpu, cuda:N, tensorrt:N (then CUDA), dml:N, coreml; OpenVINO: CPU, GPU.N, NPU; else the device
    precision: str


def get_backend(name: str) -> Backend:
    if name not in BACKENDS:
        raise OptionError(f"unknown backend '{name}'; use one of {', '.join(BACKENDS)}")
    backend = BACKENDS[name]
    if not backend.installed():
        missing = ", ".join(m for m in backend.modules if importlib.util.find_spec(m) is None)
        raise BackendUnavailable(f"--backend {name} needs {missing}: {backend.install}")
    return backend


def _device_kind(spec: str) -> tuple[str, int | None]:
    m = re.fullmatch(r"(auto|cpu|cuda|mps|dml|gpu|npu)(?:[:.](\d+))?", (spec or "auto").lower())
    if m is None:
        raise OptionError(f"unknown device '{spec}'; use auto, cpu, cuda, cuda:N, mps, dml[:N], gpu[.N] or npu")
    return m.group(1), (int(m.group(2)) if m.group(2) is not None else None)


def _refuse(backend: Backend, kind: str) -> BackendUnavailable:
    return BackendUnavailable(f"--backend {backend.name} cannot run on --device {kind}; it runs on "
                              f"{', '.join(backend.devices)}")


def place(name: str, device: str = "auto", precision: str = "auto") -> Placement:
    """Resolve ``--backend``, ``--device`` and ``--precision`` together (one line for any
    mismatch)."""

    from stdan_cli.upscalers.device import resolve_device, resolve_precision

    backend = get_backend(name)
    kind, index = _device_kind(device)
    if backend.name == "openvino":
        return _place_openvino(backend, kind, index, precision)
    if kind not in ("auto", *backend.devices):
        raise _refuse(backend, kind)
    if backend.name == "onnxruntime":
        return _place_onnxruntime(backend, kind, index, device, precision)
    torch_device = resolve_device(device)
    if torch_device.type not in backend.devices:
        raise _refuse(backend, torch_device.type)
    return Placement(backend, torch_device, str(torch_device), resolve_precision(precision, torch_device).name)


def _engine_precision(backend: Backend, precision: str, gpu: bool) -> str:
    if precision not in backend.precisions:
        raise OptionError(f"--backend {backend.name} runs in {' or '.join(backend.precisions[1:])}, "
                          f"not --precision {precision}")
    if precision == "auto":
        return "fp16" if gpu else "fp32"
    if precision == "fp16" and not gpu:
        raise OptionError(f"--precision fp16 with --backend {backend.name} needs a GPU; use fp32")
    return precision


def ort_providers() -> list[str]:
    import onnxruntime

    return onnxruntime.get_available_providers()


# torch device type -> the ONNX Runtime provider it needs, and how to get it
_ORT_GPU = {"cuda": ("CUDAExecutionProvider", "pip install onnxruntime-gpu"),
            "mps": ("CoreMLExecutionProvider", "macOS builds of onnxruntime have it")}


def _place_onnxruntime(backend: Backend, kind: str, index: int | None, spec: str, precision: str) -> Placement:
    import torch

    from stdan_cli.upscalers.device import resolve_device

    providers = ort_providers()
    if kind == "dml":
        if "DmlExecutionProvider" not in providers:
            raise BackendUnavailable("--device dml needs ONNX Runtime's DirectML build: pip install onnxruntime-directml")
        return Placement(backend, torch.device("cpu"), f"dml:{index or 0}", _engine_precision(backend, precision, True))
    torch_device = resolve_device("auto" if kind == "auto" else spec)
    if torch_device.type in _ORT_GPU:
        provider, remedy = _ORT_GPU[torch_device.type]
        if provider in providers:
            chosen = _engine_precision(backend, precision, True)
            if torch_device.type == "mps":  # CoreML takes host tensors
                return Placement(backend, torch.device("cpu"), "coreml", chosen)
            kind = "tensorrt" if "TensorrtExecutionProvider" in providers else "cuda"
            return Placement(backend, torch_device, f"{kind}:{torch_device.index}", chosen)
        if kind != "auto":  # auto falls back to the CPU
            raise BackendUnavailable(f"this ONNX Runtime has no {provider}: {remedy}")
    return Placement(backend, torch.device("cpu"), "cpu", _engine_precision(backend, precision, False))


def _place_openvino(backend: Backend, kind: str, index: int | None, precision: str) -> Placement:
    import torch


    if kind == "auto":
        kind = "cpu"
    if kind not in backend.devices:
        raise _refuse(backend, kind)
    import openvino

    target = {"cpu": "CPU", "gpu": "GPU", "npu": "NPU"}[kind] + (f".{index}" if index is not None else "")
    available = openvino.Core().available_devices
    if not any(d == target or d.startswith(target + ".") for d in available):
        raise BackendUnavailable(f"OpenVINO sees no device {target} here (it has {', '.join(available) or 'none'})")
    return Placement(backend, torch.device("cpu"), target, _engine_precision(backend, precision, kind != "cpu"))
