"""``--backend compile``: the network it compiles is in the run's precision, and an eager
upscaler has nothing to prepare. (Compiling itself takes minutes even for the small
configuration on 2 cores: it is measured by ``benchmarks/bench_backends.py``, not here.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from stdan_cli.api import prepare_backend
from stdan_cli.model import STDAN, STDANConfig
from stdan_cli.model.swin import WindowAttention
from stdan_cli.upscalers import build_upscaler


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """A small-configuration checkpoint whose deformable offsets are not zero."""
    torch.manual_seed(0)
    model = STDAN(STDANConfig.small())
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "conv_offset" in name:
                p.normal_(0.0, 0.05)
    path = tmp_path_factory.mktemp("weights") / "small.pth"
    torch.save(model.state_dict(), path)
    return path


def test_compile_builds_the_network_in_the_resolved_precision(weights):
    # Nothing compiles until the first call: the network it will compile is already in bf16.
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        pytest.skip("this CPU has no bfloat16 support")
    upscaler = build_upscaler("stdan", weights, "cpu", "bf16", 1, "compile")
    assert upscaler.precision == "bf16"
    model = upscaler.engine.model
    dtypes = {m.qkv.weight.dtype for m in model.modules() if isinstance(m, WindowAttention)}
    assert dtypes == {torch.bfloat16}
    assert upscaler.fallback is not model and next(upscaler.fallback.parameters()).dtype == torch.float32


def test_eager_upscalers_have_nothing_to_prepare():
    said: list[str] = []
    prepare_backend(build_upscaler("bicubic"), 4, said.append)
    assert said == []
