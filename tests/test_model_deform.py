"""The two deformable operations: official op-level fixtures and hand-made cases."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from stdan_cli.model.deform import (
    deform_sample,
    kernel_grid,
    modulated_deform_conv2d,
    sample,
)

TOL = 1e-5


def _shifted_columns(x, dy, dx):
    """Reference columns (B, C, 9, H, W): kernel point (i, j) of pixel (p, q) reads
    x[p + i - 1 + dy, q + j - 1 + dx], or 0 outside the frame."""
    _, _, h, w = x.shape
    pad = 3 + max(abs(dy), abs(dx))
    xp = F.pad(x, (pad, pad, pad, pad))
    cols = [
        xp[:, :, pad + i - 1 + dy : pad + i - 1 + dy + h, pad + j - 1 + dx : pad + j - 1 + dx + w]
        for i in range(3)
        for j in range(3)
    ]
    return torch.stack(cols, 2)


def _zero_offsets(b, groups, h, w):
    return torch.zeros(b, groups * 18, h, w), torch.ones(b, groups * 9, h, w)


def _uniform_offsets(b, groups, h, w, dy, dx):
    offset = torch.zeros(b, groups, 9, 2, h, w)
    offset[:, :, :, 0] = dy
    offset[:, :, :, 1] = dx
    return offset.view(b, groups * 18, h, w), torch.ones(b, groups * 9, h, w)


def test_official_op_fixtures(reference_dir):
    ops = torch.load(reference_dir / "parity_ops.pt", weights_only=True)
    for case in ("dsp_v2_a", "dsp_v2_b"):
        x = ops[f"{case}.input"]
        cols = deform_sample(x, ops[f"{case}.offset"], ops[f"{case}.mask"], ops[f"{case}.deformable_groups"])
        ref = ops[f"{case}.output"]
        assert cols.reshape(ref.shape).sub(ref).abs().max() <= TOL, case
    for case in ("modulated_deform_conv_a", "modulated_deform_conv_b"):
        out = modulated_deform_conv2d(
            ops[f"{case}.input"], ops[f"{case}.offset"], ops[f"{case}.mask"],
            ops[f"{case}.weight"], ops[f"{case}.bias"], ops[f"{case}.deformable_groups"],
        )
        assert out.sub(ops[f"{case}.output"]).abs().max() <= TOL, case


def test_zero_offset_equals_plain_convolution():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 16, 7, 9, generator=g)
    weight, bias = torch.randn(5, 16, 3, 3, generator=g), torch.randn(5, generator=g)
    offset, mask = _zero_offsets(2, 4, 7, 9)
    out = modulated_deform_conv2d(x, offset, mask, weight, bias, groups=4)
    torch.testing.assert_close(out, F.conv2d(x, weight, bias, padding=1), atol=1e-5, rtol=1e-5)


def test_zero_offset_columns_equal_unfold():
    x = torch.rand(1, 8, 5, 6, generator=torch.Generator().manual_seed(2))
    offset, mask = _zero_offsets(1, 2, 5, 6)
    cols = deform_sample(x, offset, mask, groups=2).reshape(1, 8 * 9, 30)
    torch.testing.assert_close(cols, F.unfold(x, 3, padding=1), atol=1e-6, rtol=0)


def test_integer_shift_moves_the_sampling_window():
    x = torch.rand(1, 4, 6, 8, generator=torch.Generator().manual_seed(3))
    dy, dx = 2, -1
    offset, mask = _uniform_offsets(1, 1, 6, 8, dy, dx)
    cols = deform_sample(x, offset, mask, groups=1)
    torch.testing.assert_close(cols, _shifted_columns(x, dy, dx), atol=1e-6, rtol=0)


def test_samples_outside_the_frame_are_zero():
    x = torch.rand(1, 2, 4, 5, generator=torch.Generator().manual_seed(4)) + 1
    for dy, dx in [(1000.0, 0.0), (0.0, -1000.0), (-1000.0, 1000.0)]:
        offset, mask = _uniform_offsets(1, 1, 4, 5, dy, dx)
        assert deform_sample(x, offset, mask, groups=1).abs().max() == 0


def test_boundary_samples_follow_the_official_kernel():
    x = torch.rand(1, 1, 4, 5, generator=torch.Generator().manual_seed(5)) + 1
    h = 4
    # Centre kernel point (k=4) of pixel row 0: sample row = 0 + dy.
    for dy, expected_weight_of_row0 in [(-1.0, 0.0), (-0.5, 0.5), (-0.25, 0.75)]:
        offset, mask = _uniform_offsets(1, 1, h, 5, dy, 0.0)
        cols = deform_sample(x, offset, mask, groups=1)
        torch.testing.assert_close(cols[0, 0, 4, 0], expected_weight_of_row0 * x[0, 0, 0], atol=1e-6, rtol=0)
    # Last row: sample at H - 1 + dy.
    for dy, expected_weight in [(1.0, 0.0), (0.5, 0.5)]:
        offset, mask = _uniform_offsets(1, 1, h, 5, dy, 0.0)
        cols = deform_sample(x, offset, mask, groups=1)
        torch.testing.assert_close(cols[0, 0, 4, h - 1], expected_weight * x[0, 0, h - 1], atol=1e-6, rtol=0)


def test_mask_and_groups_apply_per_channel_group():
    x = torch.rand(1, 4, 5, 5, generator=torch.Generator().manual_seed(6))
    offset = torch.zeros(1, 2, 9, 2, 5, 5)
    offset[:, 1, :, 1] = 1.0  # group 1 (channels 2, 3) looks one pixel to the right
    mask = torch.ones(1, 2, 9, 5, 5)
    mask[:, 0] = 0.5  # group 0 (channels 0, 1) is halved
    cols = deform_sample(x, offset.view(1, 36, 5, 5), mask.view(1, 18, 5, 5), groups=2)
    torch.testing.assert_close(cols[:, :2], 0.5 * _shifted_columns(x, 0, 0)[:, :2], atol=1e-6, rtol=0)
    torch.testing.assert_close(cols[:, 2:], _shifted_columns(x, 0, 1)[:, 2:], atol=1e-6, rtol=0)


def test_batch_split_into_column_chunks_gives_the_same_result():
    """A batch whose columns exceed ``column_bytes`` is computed in parts, with the same result."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(5, 16, 6, 7, generator=g)
    offset = 2 * torch.randn(5, 8 * 18, 6, 7, generator=g)
    mask = torch.rand(5, 8 * 9, 6, 7, generator=g)
    weight, bias = torch.randn(12, 16, 3, 3, generator=g), torch.randn(12, generator=g)
    whole = modulated_deform_conv2d(x, offset, mask, weight, bias, 8, column_bytes=None)
    per_item = 16 * 9 * 6 * 7 * 4
    parts = modulated_deform_conv2d(x, offset, mask, weight, bias, 8, column_bytes=2 * per_item)  # 2, 2, 1
    torch.testing.assert_close(parts, whole, rtol=0, atol=1e-5)
    for i in range(5):  # and each item equals its own computation
        torch.testing.assert_close(parts[i : i + 1], modulated_deform_conv2d(
            x[i : i + 1], offset[i : i + 1], mask[i : i + 1], weight, bias, 8), rtol=0, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_sampling_positions_are_float32_whatever_the_feature_dtype(dtype):
    """Offsets from a low-precision model give exactly the float32 positions of the same
    values, and the sampling itself runs in float32 (only the result is rounded)."""
    g = torch.Generator().manual_seed(0)
    h, w, groups = 240, 320, 2
    offset = (torch.randn(1, groups * 18, h, w, generator=g) * 3).to(dtype)
    grid = kernel_grid(offset, groups)
    assert grid.dtype == torch.float32
    assert torch.equal(grid, kernel_grid(offset.float(), groups))
    x = torch.rand(1, 8, h, w, generator=g).to(dtype)
    samples = sample(x, grid, groups)
    assert samples.dtype == dtype
    assert torch.equal(samples, sample(x.float(), grid, groups).to(dtype))


def test_sampling_strided_half_features_is_finite():
    """grid_sample gets a contiguous float32 copy, whatever the strides of the features."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 16, 12, 20, generator=g).half().contiguous(memory_format=torch.channels_last)
    offset, mask = (torch.randn(2, 36, 12, 20, generator=g) * 2).half(), torch.rand(2, 18, 12, 20, generator=g).half()
    cols = deform_sample(x, offset, mask, 2)
    assert torch.isfinite(cols).all()
    exact = deform_sample(x.float(), offset.float(), mask.float(), 2)
    torch.testing.assert_close(cols.float(), exact, rtol=2e-3, atol=2e-3)
