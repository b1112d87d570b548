"""The fast Swin and STDFA equal their plain formulation in stdan_cli.model.reference."""

from __future__ import annotations

import pytest
import torch

from stdan_cli.model import STDAN, STDANConfig, load_model
from stdan_cli.model import reference as ref
from stdan_cli.model.slicing import SlicePolicy
from stdan_cli.model.swin import to_image, to_tokens

TOL = 1e-5


def close(a: torch.Tensor, b: torch.Tensor, tol: float = TOL) -> None:
    assert a.shape == b.shape
    err = (a - b).abs().max().item()
    assert err <= tol, err


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    model = STDAN(STDANConfig.small()).eval()
    for name, p in model.named_parameters():  # non-trivial LayerNorms, biases and offsets
        if name.endswith("bias") or "norm" in name or "relative_position_bias_table" in name:
            torch.nn.init.normal_(p, 0.0 if "weight" not in name else 1.0, 0.2)
        if "conv_offset" in name:
            torch.nn.init.normal_(p, 0.0, 0.05)
    return model


@pytest.fixture(scope="module")
def official(reference_dir):
    return load_model(reference_dir / "parity_weights_fp16.pt").model


@pytest.mark.parametrize("hw", [(16, 40), (24, 24)])
@pytest.mark.parametrize("windows_per_step", [32, 5])
def test_swin_blocks_equal_roll_partition_attend_reverse_roll(small, hw, windows_per_step):
    """Each RSTB's block group (tokens kept in window order, a few windows at a time) equals
    the paper's blocks applied one by one to row-major tokens, shifted blocks included."""
    h, w = hw
    layer = small.feature_recon.layers[0]
    x = torch.randn(2, h * w, small.config.embed_dim, generator=torch.Generator().manual_seed(1))
    block = layer.residual_group.blocks[0]
    one_window = block.attn.num_heads * block.window_size**4 * 4  # float32 logits of one window
    small.set_slice_policy(SlicePolicy(swin_logit_bytes=windows_per_step * one_window))
    try:
        with torch.no_grad():
            fast = layer.residual_group(x, hw)
            plain = x
            for block in layer.residual_group.blocks:
                plain = ref.swin_block(block, plain, hw)
    finally:
        small.set_slice_policy(SlicePolicy())
    assert any(b.shift for b in layer.residual_group.blocks)
    close(fast, plain)


def test_swin_transformer_equals_reference(small):
    x = torch.randn(3, small.config.nf, 16, 24, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        close(small.feature_extraction(x), ref.swin_transformer(small.feature_extraction, x))
        close(small.feature_recon(x), ref.swin_transformer(small.feature_recon, x))


@pytest.mark.parametrize("stdfa_bytes", [96 * 2**20, 1])
def test_stdfa_equals_the_loop_over_frame_pairs(small, stdfa_bytes):
    feats = torch.randn(1, 7, small.config.nf, 16, 24, generator=torch.Generator().manual_seed(3))
    small.set_slice_policy(SlicePolicy(stdfa_bytes=stdfa_bytes))
    try:
        with torch.no_grad():
            fast = small.stdfa(feats)
    finally:
        small.set_slice_policy(SlicePolicy())
    with torch.no_grad():
        close(fast, ref.stdfa(small.stdfa, feats))


def test_small_model_equals_reference(small):
    x = torch.rand(1, 4, 3, 16, 24, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        close(small(x), ref.stdan_forward(small, x))


@pytest.mark.slow
def test_reference_matches_the_official_fixture(official, reference_dir):
    """The reference is the official network: it reproduces case a's deformable attention and
    reconstruction Swin outputs, and the fast modules equal it there."""
    case = torch.load(reference_dir / "parity_case_a.pt", weights_only=True)
    q, k, v = (case[f"stdfa.deformable_corr:call0:in{i}"] for i in range(3))
    with torch.no_grad():
        weight, v_hat = ref.deformable_attention(official.stdfa.deformable_corr, q, k, v)
        close(weight, case["stdfa.deformable_corr:call0:out0"])
        close(v_hat, case["stdfa.deformable_corr:call0:out1"])
        fast = official.stdfa.deformable_corr(q, k, v)
        close(fast[0], weight)
        close(fast[1], v_hat)
        recon_in = case["stdfa"][:2]  # two of the 7 frames keep the test short
        out = ref.swin_transformer(official.feature_recon, recon_in)
        close(out, case["feature_recon"][:2])
        close(official.feature_recon(recon_in), out)


@pytest.mark.slow
def test_fixture_model_equals_reference(official, reference_dir):
    case = torch.load(reference_dir / "parity_case_a.pt", weights_only=True)
    with torch.no_grad():
        plain = ref.stdan_forward(official, case["input"])
        close(official(case["input"]), plain)
    close(plain, case["output"])


def test_tokens_round_trip():
    x = torch.rand(2, 5, 8, 16)
    assert torch.equal(to_image(to_tokens(x), (8, 16)), x)
