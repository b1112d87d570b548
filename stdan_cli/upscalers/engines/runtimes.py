"""Running one exported part in each backend's runtime: ``run(inputs) -> output`` on tensors.

Every runner takes and returns torch tensors, so the feature cache, tiles and chunks work
on its results as on eager PyTorch's. ONNX Runtime on CUDA reads and writes the torch
tensors in place on the GPU (I/O binding); the other runtimes take host tensors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from stdan_cli.upscalers.engines.backends import Placement


def ort_session(path: Path, placement: Placement, threads: int | None, trt_cache: Path | None):
    """An ONNX Runtime session of ``path`` for ``placement`` (its target's providers, the CPU
    provider last, always)."""
    import onnxruntime as ort

    target = placement.target
    available = set(ort.get_available_providers())
    providers: list = []
    for name in target.providers:
        if name not in available:
            raise RuntimeError(f"this ONNX Runtime has no {name}")
        options = {"device_id": target.device_id} if name != "CoreMLExecutionProvider" else {}
        if name == "TensorrtExecutionProvider":
            options |= {"trt_fp16_enable": placement.precision == "fp16", "trt_engine_cache_enable": True,
                        "trt_engine_cache_path": str(trt_cache), "trt_timing_cache_enable": True}
            trt_cache.mkdir(parents=True, exist_ok=True)
        providers.append((name, options))
    providers.append("CPUExecutionProvider")
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
    so.log_severity_level = 3  # warnings about unsupported nodes falling back to the CPU are not the user's
    return ort.InferenceSession(str(path), so, providers=providers)


def ort_runner(session, device: torch.device, output_shape: Callable[..., tuple[int, ...]]) -> Callable:
    """``run(*inputs)``: host tensors through numpy, or CUDA tensors bound in place."""
    names = [i.name for i in session.get_inputs()]
    out_name = session.get_outputs()[0].name
    if device.type != "cuda":
        def run(*inputs: torch.Tensor) -> torch.Tensor:
            feed = {n: t.detach().cpu().contiguous().numpy() for n, t in zip(names, inputs)}
            return torch.from_numpy(session.run([out_name], feed)[0])
        return run

    def run_cuda(*inputs: torch.Tensor) -> torch.Tensor:
        binding = session.io_binding()
        kept = [t.contiguous() for t in inputs]
        for n, t in zip(names, kept):
            binding.bind_input(n, "cuda", device.index or 0, _np_dtype(t.dtype), tuple(t.shape), t.data_ptr())
        out = torch.empty(output_shape(*kept), dtype=torch.float32, device=device)
        binding.bind_output(out_name, "cuda", device.index or 0, np.float32, tuple(out.shape), out.data_ptr())
        torch.cuda.current_stream(device).synchronize()  # the inputs are written before ORT reads them
        session.run_with_iobinding(binding)
        return out
    return run_cuda


def _np_dtype(dtype: torch.dtype):
    return {torch.float32: np.float32, torch.int64: np.int64, torch.float16: np.float16}[dtype]


def openvino_compiled(path: Path, placement: Placement, threads: int | None, cache_dir: Path):
    """An OpenVINO compiled model of the ONNX file ``path``, and whether it came from the cache.

    OpenVINO keeps what it compiled in ``cache_dir`` (its ``CACHE_DIR``, for CPUs as for GPUs
    and NPUs) and imports it in a later run instead of compiling again. The model is given to
    ``compile_model`` as its file, not as a model read first: then a cached blob is found by the
    file's path and contents and imported without reading or converting the ONNX graph at all."""
    import openvino as ov

    core = ov.Core()
    cache_dir.mkdir(parents=True, exist_ok=True)
    config = {"CACHE_DIR": str(cache_dir),
              "INFERENCE_PRECISION_HINT": "f32" if placement.precision == "fp32" else "f16",
              "PERFORMANCE_HINT": "LATENCY"}
    if threads and placement.target.on_cpu:
        config["INFERENCE_NUM_THREADS"] = threads
    compiled = core.compile_model(str(path), placement.target.device, config)
    return compiled, bool(compiled.get_property("LOADED_FROM_CACHE"))


def openvino_runner(compiled) -> Callable:
    request = compiled.create_infer_request()

    def run(*inputs: torch.Tensor) -> torch.Tensor:
        result = request.infer([t.detach().cpu().contiguous().numpy() for t in inputs])
        return torch.from_numpy(np.array(next(iter(result.values())), copy=True))  # the request reuses its buffer
    return run
