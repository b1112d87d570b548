"""Modulated deformable sampling (DCNv2) in plain PyTorch.

Both deformable operations of STDAN are built from one primitive, :func:`deform_sample`:
for every output pixel and each of the 9 points of a 3x3 kernel (stride 1, padding 1),
bilinearly sample the input at the kernel point moved by a learned offset, and multiply
by a learned mask. The official CUDA kernels define the semantics reproduced here:

- offsets are laid out per deformable group ``g`` and kernel point ``k = 3*i + j`` as
  channels ``g*18 + 2*k + {0: dy, 1: dx}``; masks as channels ``g*9 + k``;
- a sample at ``y <= -1``, ``y >= H``, ``x <= -1`` or ``x >= W`` is 0, and inside that range
  any of the four bilinear corners that falls outside the map contributes 0.

That is exactly ``grid_sample(..., padding_mode="zeros", align_corners=False)`` once pixel
coordinates are normalised, so the gather runs in PyTorch's optimised kernels on any device.

Sampling positions are always computed, and the sampling done, in float32, whatever the
features' dtype: a normalised coordinate needs ~1/size resolution (bfloat16's 8 bits would
move samples by pixels on large maps) and ``grid_sample`` in half precision is not reliable on
every backend. Only the sampled values are returned in the features' dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from stdan_cli.model.slicing import CPU_SLICES, SlicePolicy, active

KERNEL_POINTS = 9  # 3x3


def _normalised_base(h: int, w: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, base) with base = the undeformed kernel positions (row + i - 1, col + j - 1)
    already normalised: grid = offset * scale + base. (1, 1, 9, 2, H, W), (dy, dx) order,
    float32."""
    dtype = torch.float32
    k = torch.arange(KERNEL_POINTS, device=device, dtype=dtype)
    ky = (torch.div(k, 3, rounding_mode="floor") - 1).view(KERNEL_POINTS, 1, 1)
    kx = (k % 3 - 1).view(KERNEL_POINTS, 1, 1)
    rows = torch.arange(h, device=device, dtype=dtype).view(1, h, 1)
    cols = torch.arange(w, device=device, dtype=dtype).view(1, 1, w)
    # align_corners=False maps pixel coordinate p to (2p + 1) / size - 1.
    y = (2 * (rows + ky) + 1) / h - 1
    x = (2 * (cols + kx) + 1) / w - 1
    base = torch.stack((y.expand(-1, h, w), x.expand(-1, h, w)), 1).view(1, 1, KERNEL_POINTS, 2, h, w)
    # From h and w by tensor arithmetic (not torch.tensor([...])), so that a traced graph
    # computes it from the traced size instead of keeping the example's value.
    one = torch.ones((), device=device, dtype=dtype)
    scale = torch.stack((2.0 / (one * h), 2.0 / (one * w))).view(1, 1, 1, 2, 1, 1)
    return scale, base


def kernel_grid(offset: torch.Tensor, groups: int) -> torch.Tensor:
    """Sampling positions for each group and kernel point, normalised for ``grid_sample``.

    ``offset`` is (B, groups*18, H, W) in (dy, dx) pairs, of any float dtype; returns
    (B*groups, 9*H, W, 2) float32 in the (x, y) order ``grid_sample`` wants.
    """
    b, _, h, w = offset.shape
    scale, base = _normalised_base(h, w, offset.device)
    norm = torch.addcmul(base, offset.view(b, groups, KERNEL_POINTS, 2, h, w).float(), scale)
    grid = torch.stack((norm[:, :, :, 1], norm[:, :, :, 0]), dim=-1)
    return grid.view(b * groups, KERNEL_POINTS * h, w, 2)


def sample(x: torch.Tensor, grid: torch.Tensor, groups: int) -> torch.Tensor:
    """Bilinear samples of each channel group of ``x`` (B, C, H, W) at that group's ``grid``
    (B*groups, Hg, Wg, 2) -> (B*groups, C//groups, Hg, Wg) in ``x``'s dtype; outside the frame
    counts as 0. Sampled in float32 (a no-op for float32 ``x``)."""
    b, c, h, w = x.shape
    return F.grid_sample(
        x.reshape(b * groups, c // groups, h, w).float(),
        grid.float(),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    ).to(x.dtype)


def deform_sample(x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor, groups: int) -> torch.Tensor:
    """Modulated deformable im2col: (B, C, H, W) -> columns (B, C, 9, H, W).

    Channel ``c`` uses the offsets and masks of group ``c // (C // groups)``. The result is the
    official ``dsp_v2_conv`` output (channel-major (C, 9) per pixel), before any weighting.
    """
    b, c, h, w = x.shape
    if c % groups:
        raise ValueError(f"{c} channels do not split into {groups} deformable groups")
    sampled = sample(x, kernel_grid(offset, groups), groups).view(b, groups, c // groups, KERNEL_POINTS, h, w)
    sampled.mul_(mask.view(b, groups, 1, KERNEL_POINTS, h, w).to(sampled.dtype))  # in place: a fresh tensor
    return sampled.view(b, c, KERNEL_POINTS, h, w)


def modulated_deform_conv2d(
    x: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    groups: int,
    column_bytes: int | None = CPU_SLICES.deform_column_bytes,
) -> torch.Tensor:
    """DCNv2: a 3x3 convolution (stride 1, padding 1) of ``x`` sampled at deformed positions.

    Equals ``torchvision.ops.deform_conv2d(x, offset, weight, bias, padding=1, mask=mask)``.
    The batch is split into parts whose (C*9, H*W) columns take at most ``column_bytes``
    (``None``: one part), so callers can batch many frame pairs without all their columns
    existing together.
    """
    b, c, h, w = x.shape
    w2d = weight.reshape(1, weight.shape[0], -1)
    step = b if column_bytes is None else max(1, column_bytes // (c * KERNEL_POINTS * h * w * x.element_size()))
    parts = []
    for i in range(0, b, step):
        part = slice(i, i + step)
        columns = deform_sample(x[part], offset[part], mask[part], groups).view(-1, c * KERNEL_POINTS, h * w)
        # bmm with the weight broadcast over the batch: matmul(2-D, 3-D) would copy the columns.
        parts.append(torch.bmm(w2d.to(columns.dtype).expand(columns.shape[0], -1, -1), columns))
    out = parts[0] if len(parts) == 1 else torch.cat(parts)
    if bias is not None:
        out = out + bias.view(1, -1, 1).to(out.dtype)
    return out.view(b, -1, h, w)


def split_offset_mask(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a ``conv_offset`` output into (offset, sigmoid mask) as the official code does:
    three equal chunks c1, c2, c3; offset = cat[c1, c2] (the first two thirds, taken as a
    view), mask = sigmoid(c3)."""
    n = out.shape[1] // 3
    return out[:, : 2 * n], torch.sigmoid(out[:, 2 * n :])


class DCNv2Pack(nn.Module):
    """Modulated deformable convolution whose offsets and masks are predicted from features.

    State-dict layout of the official ``DCNv2Pack``: ``weight``, ``bias``, ``conv_offset.*``.
    """

    slices: SlicePolicy = CPU_SLICES

    def __init__(self, channels: int, deformable_groups: int):
        super().__init__()
        self.deformable_groups = deformable_groups
        self.weight = nn.Parameter(torch.empty(channels, channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.conv_offset = nn.Conv2d(channels, deformable_groups * 3 * KERNEL_POINTS, 3, 1, 1)
        # The official initialisation: kaiming_uniform for relu (bound sqrt(6 / fan_in)), and
        # offsets and masks that start at zero (every kernel point at its grid place, mask 0.5).
        nn.init.kaiming_uniform_(self.weight, nonlinearity="relu")
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    def forward(self, x: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
        offset, mask = split_offset_mask(self.conv_offset(feat))
        column_bytes = active(self.slices).deform_column_bytes
        return modulated_deform_conv2d(x, offset, mask, self.weight, self.bias, self.deformable_groups, column_bytes)
