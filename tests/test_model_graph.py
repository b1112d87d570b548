"""Autograd, torch.export and tracing: per-size caches and chunking do not get in the way."""

from __future__ import annotations

import pytest
import torch

from stdan_cli.model import STDAN, STDANConfig


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    model = STDAN(STDANConfig.small()).eval()
    for name, p in model.named_parameters():  # the official init zeroes the offset convs
        if "conv_offset" in name:
            torch.nn.init.normal_(p, 0.0, 0.05)
    return model


def test_backward_reaches_every_parameter(small):
    x = torch.rand(1, 3, 3, 16, 24, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        small(x)  # per-size caches are filled under inference mode first
    small.zero_grad()
    out = small(x)
    out.square().mean().backward()
    missing = [n for n, p in small.named_parameters() if p.grad is None]
    assert not missing, missing
    grads = torch.cat([p.grad.flatten() for p in small.parameters()])
    assert torch.isfinite(grads).all() and grads.abs().sum() > 0
    small.zero_grad()


def test_backward_under_bf16_autocast(small):
    x = torch.rand(1, 2, 3, 8, 16, generator=torch.Generator().manual_seed(1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = small(x).float().square().mean()
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in small.parameters() if p.grad is not None)
    small.zero_grad()


@pytest.mark.slow  # torch.export of the whole network: minutes on 2 cores
def test_export_with_dynamic_height_and_width(small):
    """One exported graph serves every size (multiples of 8) and equals eager at each."""
    from torch.export import Dim, export

    g = torch.Generator().manual_seed(2)
    x = torch.rand(1, 2, 3, 16, 24, generator=g)  # 2 frames keep the graph (and the test) short
    hb, wb = Dim("hb", min=1, max=64), Dim("wb", min=1, max=64)
    with torch.no_grad():
        program = export(small, (x,), dynamic_shapes={"x": {3: 8 * hb, 4: 8 * wb}})
        for size in ((16, 24), (24, 40)):
            y = torch.rand(1, 2, 3, *size, generator=g)
            torch.testing.assert_close(program.module()(y), small(y), rtol=0, atol=1e-5)
