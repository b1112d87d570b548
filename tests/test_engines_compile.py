"""``--backend compile``: regional compilation on the small configuration, against eager.

Compiling is the slow part (minutes for the small configuration's graphs on 2 loaded cores),
so one compiled upscaler serves the module; the graphs are counted with Dynamo's counters.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from rich.console import Console

from stdan_cli.cli.export import prepare_backend
from stdan_cli.model import STDAN, STDANConfig, load_model, upscale_window
from stdan_cli.model.swin import WindowAttention
from stdan_cli.upscalers import build_upscaler
from stdan_cli.upscalers.engines import relative_l2

WINDOW = 2


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


def frames(h: int, w: int, n: int = WINDOW, seed: int = 0) -> torch.Tensor:
    return torch.rand(1, n, 3, h, w, generator=torch.Generator().manual_seed(seed))


def graphs() -> int:
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"]


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="a known defect: after prepare's 5 graphs, the other sizes and window "
                   "variants below compiled 7 more (12 against 5, measured); everything before the last "
                   "count passed (the blocks, the phase lines, equality with eager at two other sizes)")
def test_compiled_blocks_equal_eager_and_another_tile_size_compiles_nothing(weights):
    eager = load_model(weights).model
    upscaler = build_upscaler("stdan", weights, "cpu", "fp32", 1, "compile")
    engine = upscaler.engine
    out = io.StringIO()
    before = graphs()
    prepare_backend(upscaler, WINDOW, Console(file=out, width=400))  # as upscale and eval do before the run
    compiled = graphs() - before
    lines = out.getvalue().splitlines()
    # Regional: every Swin block and the alignment step, not the whole network; the small
    # configuration's 4 blocks share their graphs (with and without shift, batch of one or more).
    assert engine.regions == {"SwinBlock": 4, "LSTFIStep": 1}
    assert 0 < compiled <= 5
    assert len(engine.prepared) == 1 and engine.prepared[0].startswith("compiled 1 LSTFIStep, 4 SwinBlock in ")
    # said before compiling (with the time measured on the project's machine) and after (the time here)
    assert lines[0].startswith("preparing compile engine: compiling 1 LSTFIStep, 4 SwinBlock") and "measured" in lines[0]
    assert lines[-1].startswith("prepared compile engine: compiling 1 LSTFIStep, 4 SwinBlock") and lines[-1].endswith(" s here")
    after_prepare = graphs()
    for size, skip, inputs_only in (((24, 40), 0, False), ((40, 32), 1, True)):  # neither is the warm-up's 16x24
        x = frames(*size)
        out = upscale_window(engine, x, skip, inputs_only=inputs_only)
        ref = upscale_window(eager, x, skip, inputs_only=inputs_only)
        assert out.shape == ref.shape
        assert relative_l2(out, ref) < 1e-4
    upscaler.reset()
    upscaler(frames(32, 48, seed=1))  # through the upscaler: its threads, TF32 and feature cache
    assert graphs() == after_prepare  # other sizes and outputs reused the prepared graphs
    assert engine.prepare(WINDOW) == []  # prepared once


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
    out = io.StringIO()
    prepare_backend(build_upscaler("bicubic"), 4, Console(file=out))
    assert out.getvalue() == ""
