"""bf16 inference: heavy matmuls in bfloat16, the rest in float32, close to float32 output."""

from __future__ import annotations

import copy

import pytest
import torch

from stdan_cli.model import load_model, pad_to_multiple
from stdan_cli.model.precision import use_low_precision_matmuls


@pytest.fixture(scope="module")
def models(reference_dir):
    fp32 = load_model(reference_dir / "parity_weights_fp16.pt").model
    return fp32, use_low_precision_matmuls(copy.deepcopy(fp32))


@pytest.mark.slow
def test_bf16_output_is_close_to_fp32(models, reference_dir):
    fp32, bf16 = models
    case = torch.load(reference_dir / "parity_case_b.pt", weights_only=True)
    x = pad_to_multiple(case["input"][..., :16, :20], 8)  # small: bf16 is slow on CPUs without it (AVX2)
    with torch.inference_mode():
        ref, out = fp32(x), bf16(x)
    assert out.dtype == torch.float32
    rel = ((out - ref).norm() / ref.norm()).item()
    assert rel <= 1e-2, rel


def test_bf16_keeps_offsets_sampling_and_norms_in_fp32(models):
    _, bf16 = models
    assert bf16.conv_first.weight.dtype == torch.float32
    assert bf16.pcd_align_modified.L1_dcnpack_1.weight.dtype == torch.float32  # deformable matmul
    assert bf16.feature_recon.norm.weight.dtype == torch.float32
    assert bf16.feature_recon.layers[0].residual_group.blocks[0].attn.qkv.weight.dtype == torch.bfloat16
    assert bf16.pcd_align_modified.L1_dcnpack_1.conv_offset.weight.dtype == torch.bfloat16



def test_a_swin_step_holds_the_same_bytes_of_logits_in_either_precision():
    from stdan_cli.model.slicing import CPU_SLICES
    from stdan_cli.model.swin import SwinBlock

    block = SwinBlock(dim=72, num_heads=6, window_size=8, shift=0, mlp_ratio=2.0, nominal_size=32)  # official
    assert block.slices == CPU_SLICES
    assert block.windows_per_step(112) == 32  # float32: 32 windows x 6 heads x 64 x 64 x 4 bytes = 3 MiB
    assert block.windows_per_step(20) == 20  # never more than an image has
    use_low_precision_matmuls(block)
    assert block.windows_per_step(112) == 64  # bfloat16 logits: twice the windows in the same bytes
