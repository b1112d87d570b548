"""Backends and devices as types: one device parser and table (the help names every kind),
one class per backend that places a run on a typed runtime target."""

from __future__ import annotations

from unittest import mock

import pytest
from click.testing import CliRunner

from stdan_cli.cli.main import main
from stdan_cli.errors import OptionError
from stdan_cli.upscalers.device_names import DEVICE_KINDS, parse_device
from stdan_cli.upscalers.engines import backends
from stdan_cli.upscalers.engines.backends import (
    BACKENDS,
    CompileBackend,
    EagerBackend,
    OnnxRuntimeBackend,
    OpenVinoBackend,
    OpenVinoTarget,
    OrtTarget,
    place,
)


@pytest.mark.parametrize("text, written", [
    ("auto", "auto"), ("CPU", "cpu"), ("cuda", "cuda"), ("cuda:1", "cuda:1"), ("cuda.1", "cuda:1"), ("mps", "mps"),
    ("dml", "dml"), ("dml:2", "dml:2"), ("gpu", "gpu"), ("GPU.1", "gpu.1"), ("gpu:1", "gpu.1"), ("npu", "npu"),
])
def test_one_parser_reads_every_device_kind(text, written):
    assert str(parse_device(text)) == written


@pytest.mark.parametrize("text", ["tpu", "cuda:x", "mps:1", "npu.0", "cpu:0", ""])
def test_an_unknown_device_names_every_kind(text):
    if text == "":  # nothing given: auto
        assert parse_device(text).name == "auto"
        return
    with pytest.raises(OptionError, match="use auto, cpu, cuda\\[:N\\], mps, dml\\[:N\\], gpu\\[.N\\], npu$"):
        parse_device(text)


@pytest.mark.parametrize("verb", ["upscale", "eval"])
def test_the_device_help_names_every_kind_from_the_table(verb):
    text = " ".join(CliRunner(env={"COLUMNS": "400"}).invoke(main, [verb, "--help"]).output.split())
    device_help = text[text.index("--device"):text.index("[default: auto]", text.index("--device"))]
    assert all(f"{kind}: " in device_help for kind in DEVICE_KINDS), device_help


def test_each_backend_is_a_typed_class():
    kinds = {name: type(b) for name, b in BACKENDS.items()}
    assert kinds == {"auto": EagerBackend, "torch": EagerBackend, "compile": CompileBackend,
                     "onnxruntime": OnnxRuntimeBackend, "openvino": OpenVinoBackend}
    assert [(b.engine, b.exports) for b in BACKENDS.values()] == [
        (False, False), (False, False), (True, False), (True, True), (True, True)]


def test_placements_carry_typed_targets():
    assert place("onnxruntime", "cpu", "fp32").target == OrtTarget((), 0, "cpu")
    assert place("openvino", "cpu", "fp32").target == OpenVinoTarget("CPU")
    eager = place("torch", "cpu", "auto")
    assert eager.target is None and eager.label == "cpu"


def test_onnxruntime_on_cuda_with_tensorrt_is_a_provider_chain(monkeypatch):
    monkeypatch.setattr(backends, "ort_providers", lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider",
                                                            "CPUExecutionProvider"])
    with mock.patch("torch.cuda.is_available", return_value=True), \
            mock.patch("torch.cuda.device_count", return_value=2), \
            mock.patch("torch.cuda.current_device", return_value=0):
        placement = place("onnxruntime", "cuda:1", "auto")
    assert placement.target == OrtTarget(("TensorrtExecutionProvider", "CUDAExecutionProvider"), 1, "tensorrt:1")
    assert (placement.precision, str(placement.device), placement.label) == ("fp16", "cuda:1", "tensorrt:1")
    assert placement.precision_why == "auto: --backend onnxruntime runs fp16 on a GPU"


@pytest.mark.parametrize("name", ["onnxruntime", "openvino"])
def test_an_engine_says_why_auto_chose_its_precision_and_nothing_for_a_named_one(name):
    auto = place(name, "cpu", "auto")
    assert (auto.precision, auto.precision_why) == ("fp32", f"auto: --backend {name} runs fp32 on a CPU")
    named = place(name, "cpu", "fp32")
    assert (named.precision, named.precision_why) == ("fp32", "")


def test_a_device_of_another_runtime_is_not_a_pytorch_device():
    from stdan_cli.upscalers.device import resolve_device

    with pytest.raises(OptionError, match="--device dml is not a PyTorch device"):
        resolve_device("dml")


def test_an_engine_says_what_frames_it_takes_without_posing_as_the_network(tmp_path):
    import torch

    from stdan_cli.model import STDAN, STDANConfig
    from stdan_cli.upscalers.engines import build_engine

    net = STDAN(STDANConfig.small()).eval()
    engine = build_engine(place("compile", "cpu", "fp32"), net, None, cache_dir=tmp_path)
    assert not hasattr(engine, "conv_first")
    assert (engine.frames_dtype, engine.frames_device) == (torch.float32, torch.device("cpu"))


def test_ray_workers_read_the_device_with_the_same_parser():
    from stdan_cli.cluster import WorkerLayout, plan_workers

    assert plan_workers({"CPU": 64, "GPU": 4}, "CUDA.1", workers=2) == WorkerLayout(2, "cuda", 1, 1, 1)
    with pytest.raises(OptionError, match="unknown device 'cuda:x'; use auto, cpu"):
        plan_workers({"CPU": 2}, "cuda:x")  # read as cuda before
    with pytest.raises(OptionError, match="unsupported device 'dml' with --ray"):
        plan_workers({"CPU": 2}, "dml")
