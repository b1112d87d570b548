"""The backends behind ``--backend``: what each needs installed, where it runs, in which
precisions, and the one rule that resolves ``auto``.

A backend is a typed description, one class per kind (:class:`EagerBackend`,
:class:`CompileBackend`, :class:`OnnxRuntimeBackend`, :class:`OpenVinoBackend`): its
:meth:`~Backend.place` resolves ``--device`` (parsed once, :func:`~stdan_cli.upscalers.device_names.parse_device`)
and ``--precision`` into a :class:`Placement` whose runtime target is typed too
(:class:`OrtTarget`, :class:`OpenVinoTarget`), refusing in one line a backend that is not
installed or cannot run on the device asked for; its :meth:`~Backend.open` loads a part's file.

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
``compile`` compiles the Swin blocks' steps only (:mod:`stdan_cli.upscalers.engines.regional`). No GPU has been measured yet
(``benchmarks/gpu_check.py`` prints the engine rows that would decide).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ClassVar

from stdan_cli.errors import OptionError, StdanError
from stdan_cli.upscalers.device_names import DeviceSpec, parse_device
from stdan_cli.upscalers.precisions import PRECISIONS

if TYPE_CHECKING:  # the table is read by --help, which must not load PyTorch
    import torch


class BackendUnavailable(StdanError):
    """The backend's package is not installed, or cannot run on the chosen device."""

    exit_code = 2


@dataclass(frozen=True)
class Backend:
    """A backend as ``--backend`` offers it; each kind is a subclass that places a run (resolves
    ``--device`` and ``--precision`` for it) and, for the exporting ones, opens a part's file."""

    name: str
    help: str
    modules: tuple[str, ...]  # Python modules it needs
    install: str  # what to install when they are missing
    devices: tuple[str, ...]  # the --device kinds it runs on (keys of DEVICE_KINDS)
    precisions: tuple[str, ...]  # the --precision values it accepts (before auto is resolved)
    # Peak memory of one window per input pixel in this backend's graphs, for choosing tiles;
    # None: the model's own (ModelDescriptor.bytes_per_pixel). Traced and exported graphs are
    # unsliced (model/slicing.py), so they hold every step's temporaries at once: measured on the
    # official configuration, fp32, CPU, as the growth of peak RSS from a 64x112 to a 128x224
    # window (benchmarks/bench_backends.py), rounded up; eager PyTorch grows by 26 KB per pixel.
    bytes_per_pixel: int | None = None

    engine: ClassVar[bool] = False  # the network's parts run in a prepared engine (else eager PyTorch)
    exports: ClassVar[bool] = False  # the parts are exported to ONNX files, prepared before the run

    def installed(self) -> bool:
        return all(importlib.util.find_spec(m) is not None for m in self.modules)

    def refuse(self, kind: str) -> "BackendUnavailable":
        return BackendUnavailable(f"--backend {self.name} cannot run on --device {kind}; it runs on "
                                  f"{', '.join(self.devices)}")

    def place(self, device: DeviceSpec, precision: str) -> "Placement":
        """Where this backend runs for ``--device`` and in which precision (one line for a mismatch)."""
        from stdan_cli.upscalers.device import resolve_device, resolve_precision

        if device.name not in ("auto", *self.devices):
            raise self.refuse(device.name)
        torch_device = resolve_device(str(device))
        if torch_device.type not in self.devices:
            raise self.refuse(torch_device.type)
        chosen = resolve_precision(precision, torch_device)
        return Placement(self, torch_device, None, chosen.name, chosen.why)

    def onnx_precision(self, precision: str) -> str:
        """The precision of the ONNX file exported for a run in ``precision``."""
        return "fp32"

    def open(self, path: Path, placement: "Placement", threads: int | None, cache: Path,
             output_shape: Callable, report: Callable[[str, bool], None]) -> Callable:
        """A part's ONNX file at ``path`` loaded in this backend's runtime: ``run(*inputs) -> output``
        (``cache``: the folder for the runtime's own compiled files; ``report(line, prepared)``:
        what loading did, and whether it prepared something new)."""
        raise TypeError(f"--backend {self.name} runs no exported files")

    def engine_precision(self, precision: str, gpu: bool) -> tuple[str, str]:
        """The precision an engine runs in for ``--precision precision`` on a GPU or not, and
        why ``auto`` chose it ("" when it was named)."""
        if precision not in self.precisions:
            raise OptionError(f"--backend {self.name} runs in {' or '.join(self.precisions[1:])}, "
                              f"not --precision {precision}")
        if precision == "auto":
            if gpu:
                return "fp16", f"auto: --backend {self.name} runs fp16 on a GPU"
            return "fp32", f"auto: --backend {self.name} runs fp32 on a CPU"
        if precision == "fp16" and not gpu:
            raise OptionError(f"--precision fp16 with --backend {self.name} needs a GPU; use fp32")
        return precision, ""


@dataclass(frozen=True)
class EagerBackend(Backend):
    """The network in eager PyTorch."""


@dataclass(frozen=True)
class CompileBackend(Backend):
    """``torch.compile`` of the Swin blocks' steps, compiled before the run
    (:mod:`stdan_cli.upscalers.engines.regional`)."""

    engine: ClassVar[bool] = True


@dataclass(frozen=True)
class OrtTarget:
    """Where ONNX Runtime runs: its execution providers, fastest first (the CPU provider is
    added last, always), the device index they take, and how the target is named."""

    providers: tuple[str, ...]
    device_id: int = 0
    label: str = "cpu"  # cpu, cuda:N, tensorrt:N (TensorRT, then CUDA), dml:N, coreml

    def __str__(self) -> str:
        return self.label


# torch device type -> the ONNX Runtime provider it needs, and how to get it
_ORT_GPU = {"cuda": ("CUDAExecutionProvider", "pip install onnxruntime-gpu"),
            "mps": ("CoreMLExecutionProvider", "macOS builds of onnxruntime have it")}


@dataclass(frozen=True)
class OnnxRuntimeBackend(Backend):
    engine: ClassVar[bool] = True
    exports: ClassVar[bool] = True

    def place(self, device: DeviceSpec, precision: str) -> "Placement":
        import torch

        from stdan_cli.upscalers.device import resolve_device

        if device.name not in ("auto", *self.devices):
            raise self.refuse(device.name)
        providers = ort_providers()
        if device.name == "dml":
            if "DmlExecutionProvider" not in providers:
                raise BackendUnavailable("--device dml needs ONNX Runtime's DirectML build: pip install "
                                         "onnxruntime-directml")
            index = device.index or 0
            return Placement(self, torch.device("cpu"), OrtTarget(("DmlExecutionProvider",), index, f"dml:{index}"),
                             *self.engine_precision(precision, True))
        torch_device = resolve_device(str(device))
        if torch_device.type in _ORT_GPU:
            provider, remedy = _ORT_GPU[torch_device.type]
            if provider in providers:
                chosen = self.engine_precision(precision, True)
                if torch_device.type == "mps":  # CoreML takes host tensors
                    return Placement(self, torch.device("cpu"), OrtTarget((provider,), 0, "coreml"), *chosen)
                index = torch_device.index
                if "TensorrtExecutionProvider" in providers:  # CUDA takes what TensorRT cannot
                    target = OrtTarget(("TensorrtExecutionProvider", provider), index, f"tensorrt:{index}")
                else:
                    target = OrtTarget((provider,), index, f"cuda:{index}")
                return Placement(self, torch_device, target, *chosen)
            if device.name != "auto":  # auto falls back to the CPU
                raise BackendUnavailable(f"this ONNX Runtime has no {provider}: {remedy}")
        return Placement(self, torch.device("cpu"), OrtTarget(()), *self.engine_precision(precision, False))

    def onnx_precision(self, precision: str) -> str:
        return precision

    def open(self, path, placement, threads, cache, output_shape, report):
        import onnxruntime

        from stdan_cli.upscalers.engines import runtimes

        trt = cache / f"tensorrt-ort{onnxruntime.__version__}" / str(placement.target).replace(":", "") / placement.precision
        session = runtimes.ort_session(path, placement, threads, trt)
        return runtimes.ort_runner(session, placement.device, output_shape)


@dataclass(frozen=True)
class OpenVinoTarget:
    """The OpenVINO device a run compiles for: CPU, GPU, GPU.N, NPU."""

    device: str

    @property
    def on_cpu(self) -> bool:
        return self.device.startswith("CPU")

    def __str__(self) -> str:
        return self.device


@dataclass(frozen=True)
class OpenVinoBackend(Backend):
    engine: ClassVar[bool] = True
    exports: ClassVar[bool] = True  # the float32 file: OpenVINO lowers precision itself (INFERENCE_PRECISION_HINT)

    def place(self, device: DeviceSpec, precision: str) -> "Placement":
        import torch

        kind = "cpu" if device.name == "auto" else device.name
        if kind not in self.devices:
            raise self.refuse(kind)
        import openvino

        target = kind.upper() + (f".{device.index}" if device.index is not None else "")
        available = openvino.Core().available_devices
        if not any(d == target or d.startswith(target + ".") for d in available):
            raise BackendUnavailable(f"OpenVINO sees no device {target} here (it has {', '.join(available) or 'none'})")
        return Placement(self, torch.device("cpu"), OpenVinoTarget(target),
                         *self.engine_precision(precision, kind != "cpu"))

    def open(self, path, placement, threads, cache, output_shape, report):
        import time

        import openvino

        from stdan_cli.upscalers.engines import runtimes

        blobs = cache / f"openvino-{openvino.__version__}" / str(placement.target) / placement.precision
        start = time.perf_counter()
        compiled, reused = runtimes.openvino_compiled(path, placement, threads, blobs)
        seconds = time.perf_counter() - start
        if reused:
            report(f"openvino engine: {path.stem} reused from OpenVINO's cache in {seconds:.1f} s ({blobs})", False)
        else:
            report(f"{path.stem} compiled by OpenVINO for {placement.target} in {seconds:.1f} s (cached in {blobs})",
                   True)
        return runtimes.openvino_runner(compiled)


TORCH_PRECISIONS = tuple(PRECISIONS)  # eager PyTorch's, compile's too

BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (
        EagerBackend("auto", "eager PyTorch (no engine has been measured faster once its preparation and memory count)",
                     (), "", ("cpu", "cuda", "mps"), TORCH_PRECISIONS),
        EagerBackend("torch", "eager PyTorch", (), "", ("cpu", "cuda", "mps"), TORCH_PRECISIONS),
        CompileBackend("compile", "torch.compile of the Swin blocks' steps, the network's repeated work, "
                       "compiled before the run; any tile size",
                       (), "", ("cpu", "cuda"), TORCH_PRECISIONS),  # sliced as eager: eager's memory per pixel
        OnnxRuntimeBackend("onnxruntime", "ONNX Runtime (--device cpu; cuda with onnxruntime-gpu, TensorRT first when "
                           "installed; dml: DirectML; mps: CoreML)", ("onnxruntime", "onnx"),
                           'pip install "onnx>=1.15" "onnxruntime>=1.17" (or onnxruntime-gpu for CUDA and TensorRT, '
                           "onnxruntime-directml for DirectML)",
                           ("cpu", "cuda", "dml", "mps"), ("auto", "fp32", "fp16"), 250_000),  # measured 243 KB
        OpenVinoBackend("openvino", "OpenVINO (--device cpu, gpu[.N] for Intel GPUs, npu)", ("openvino", "onnx"),
                        'pip install "onnx>=1.15" "openvino>=2024.0"', ("cpu", "gpu", "npu"), ("auto", "fp32", "fp16"),
                        350_000),  # measured 343 KB
    )
}


@dataclass(frozen=True)
class Placement:
    """Where one run executes: the backend, the torch device the pipeline's tensors live on,
    the runtime's own target (None: the torch device itself), and the resolved precision."""

    backend: Backend
    device: "torch.device"
    target: "OrtTarget | OpenVinoTarget | None"
    precision: str
    precision_why: str = ""  # why --precision auto chose ``precision`` here ("" when named)

    @property
    def label(self) -> str:
        """Where it runs, as a name says it: the runtime's target, else the torch device."""
        return str(self.target) if self.target is not None else str(self.device)


def get_backend(name: str) -> Backend:
    if name not in BACKENDS:
        raise OptionError(f"unknown backend '{name}'; use one of {', '.join(BACKENDS)}")
    backend = BACKENDS[name]
    if not backend.installed():
        missing = ", ".join(m for m in backend.modules if importlib.util.find_spec(m) is None)
        raise BackendUnavailable(f"--backend {name} needs {missing}: {backend.install}")
    return backend


def place(name: str, device: str = "auto", precision: str = "auto") -> Placement:
    """Resolve ``--backend``, ``--device`` and ``--precision`` together (one line for any mismatch)."""
    return get_backend(name).place(parse_device(device), precision)


def ort_providers() -> list[str]:
    import onnxruntime

    return onnxruntime.get_available_providers()
