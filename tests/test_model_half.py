"""The whole model in half precision (``.half()``, ``.to(torch.bfloat16)``) or under autocast:
finite, and close to float32 with the parity fixture weights and inputs.

The input is the top-left 16x16 of fixture case a (two Swin windows each way, so the shifted
windows and their masks are exercised); the weights are the full official network's. On a
CPU without native bfloat16/float16 (oneDNN has none on AVX2-only machines) these dtypes run
10-100x slower than float32, hence the small input.
"""

from __future__ import annotations

import copy

import pytest
import torch

from stdan_cli.model import load_model


@pytest.fixture(scope="module")
def fp32(reference_dir):
    return load_model(reference_dir / "parity_weights_fp16.pt").model


@pytest.fixture(scope="module")
def fixture_input(reference_dir):
    case = torch.load(reference_dir / "parity_case_a.pt", weights_only=True)["input"]
    return case[..., :16, :16].contiguous()


@pytest.fixture(scope="module")
def fp32_output(fp32, fixture_input):
    with torch.inference_mode():
        return fp32(fixture_input)


def _rel_l2(out: torch.Tensor, ref: torch.Tensor) -> float:
    return ((out.float() - ref).norm() / ref.norm()).item()


@pytest.mark.slow  # the official network in emulated half precision: minutes on this CPU
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_whole_model_in_half_precision_is_finite_and_close(fp32, fixture_input, fp32_output, dtype):
    low = copy.deepcopy(fp32).to(dtype)
    with torch.inference_mode():
        out = low(fixture_input.to(dtype))
    assert out.dtype == dtype and torch.isfinite(out).all()
    assert _rel_l2(out, fp32_output) <= 2e-2, _rel_l2(out, fp32_output)


@pytest.mark.slow
def test_autocast_bf16_is_close(fp32, fixture_input, fp32_output):
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = fp32(fixture_input)
    assert torch.isfinite(out).all()
    assert _rel_l2(out, fp32_output) <= 1.5e-2, _rel_l2(out, fp32_output)
