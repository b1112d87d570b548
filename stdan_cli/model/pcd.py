"""Pyramid, cascading and deformable (PCD) alignment, and the LSTFI step built on it.

``PCDAlign`` holds two mirrored branches: suffix ``_1`` aligns the first frame's pyramid using
the second's, suffix ``_2`` the reverse. ``LSTFIStep`` (official name ``pcd_align_modified``)
is one step of STDAN's long-short-term feature interpolation: it aligns two neighbouring
frames, mixes in the recurrent hidden state through an ``EasyPCD``, and updates that state.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from stdan_cli.model.deform import DCNv2Pack

Pyramid = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (L1, L2, L3) features


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.1)


def up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def conv3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, 1)


class PointwiseConv(nn.Conv2d):
    """A 1x1 convolution (an ``nn.Conv2d``, same parameters) computed as one matrix product
    per image, whose sums run in the same order whatever the number of CPU threads.

    PyTorch runs a plain 1x1 ``nn.Conv2d`` on the CPU with its native kernel (a matrix product)
    on one thread and with oneDNN on several (``use_mkldnn`` in ATen's Convolution.cpp), and the
    two round differently: a Ray worker of one thread would make other frames than a process of
    two. tests/test_model_windows.py holds it equal to ``F.conv2d`` and the same on 1 and 2 threads.
    """

    def __init__(self, cin: int, cout: int):
        super().__init__(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        weight = self.weight.view(self.out_channels, c)
        y = torch.matmul(weight, x.reshape(b, c, h * w))
        if self.bias is not None:
            y = y + self.bias.view(1, -1, 1)
        return y.view(b, self.out_channels, h, w)


class PyramidMixin:
    """Adds ``fea_L2_conv1/2`` and ``fea_L3_conv1/2``: level 2 and 3 features from level 1."""

    def _init_pyramid(self, nf: int) -> None:
        self.fea_L2_conv1 = conv3(nf, nf, stride=2)
        self.fea_L2_conv2 = conv3(nf, nf)
        self.fea_L3_conv1 = conv3(nf, nf, stride=2)
        self.fea_L3_conv2 = conv3(nf, nf)

    def pyramid(self, l1: torch.Tensor) -> Pyramid:
        l2 = lrelu(self.fea_L2_conv2(lrelu(self.fea_L2_conv1(l1))))
        l3 = lrelu(self.fea_L3_conv2(lrelu(self.fea_L3_conv1(l2))))
        return l1, l2, l3


class PCDAlign(nn.Module):
    """Two mirrored PCD branches (keys ``L{level}_..._{1|2}``)."""

    def __init__(self, nf: int, deformable_groups: int):
        super().__init__()
        for s in ("1", "2"):
            self.add_module(f"L3_offset_conv1_{s}", conv3(2 * nf, nf))
            self.add_module(f"L3_offset_conv2_{s}", conv3(nf, nf))
            self.add_module(f"L3_dcnpack_{s}", DCNv2Pack(nf, deformable_groups))
            self.add_module(f"L2_offset_conv1_{s}", conv3(2 * nf, nf))
            self.add_module(f"L2_offset_conv2_{s}", conv3(2 * nf, nf))
            self.add_module(f"L2_offset_conv3_{s}", conv3(nf, nf))
            self.add_module(f"L2_dcnpack_{s}", DCNv2Pack(nf, deformable_groups))
            self.add_module(f"L2_fea_conv_{s}", conv3(2 * nf, nf))
            self.add_module(f"L1_offset_conv1_{s}", conv3(2 * nf, nf))
            self.add_module(f"L1_offset_conv2_{s}", conv3(2 * nf, nf))
            self.add_module(f"L1_offset_conv3_{s}", conv3(nf, nf))
            self.add_module(f"L1_dcnpack_{s}", DCNv2Pack(nf, deformable_groups))
            self.add_module(f"L1_fea_conv_{s}", conv3(2 * nf, nf))

    def align_branch(self, s: str, a: Pyramid, b: Pyramid) -> torch.Tensor:
        """Branch ``s`` aligns pyramid ``a`` using ``b``; returns level-1 features (nf, H, W)."""
        m = lambda name: getattr(self, f"{name}_{s}")  # noqa: E731
        a1, a2, a3 = a
        b1, b2, b3 = b
        # L3: coarsest offsets
        o3 = lrelu(m("L3_offset_conv2")(lrelu(m("L3_offset_conv1")(torch.cat([a3, b3], 1)))))
        f3 = lrelu(m("L3_dcnpack")(a3, o3))
        # L2: offsets refined with the upsampled (and doubled) L3 offsets
        o2 = lrelu(m("L2_offset_conv1")(torch.cat([a2, b2], 1)))
        o2 = lrelu(m("L2_offset_conv2")(torch.cat([o2, up2(o3) * 2], 1)))
        o2 = lrelu(m("L2_offset_conv3")(o2))
        f2 = m("L2_dcnpack")(a2, o2)
        f2 = lrelu(m("L2_fea_conv")(torch.cat([f2, up2(f3)], 1)))
        # L1
        o1 = lrelu(m("L1_offset_conv1")(torch.cat([a1, b1], 1)))
        o1 = lrelu(m("L1_offset_conv2")(torch.cat([o1, up2(o2) * 2], 1)))
        o1 = lrelu(m("L1_offset_conv3")(o1))
        f1 = m("L1_dcnpack")(a1, o1)
        return m("L1_fea_conv")(torch.cat([f1, up2(f2)], 1))

    def forward(self, a: Pyramid, b: Pyramid) -> tuple[torch.Tensor, torch.Tensor]:
        return self.align_branch("1", a, b), self.align_branch("2", b, a)


class EasyPCD(PyramidMixin, nn.Module):
    """Aligns two single-level feature maps with their own pyramids (official ``pcd_h``)."""

    def __init__(self, nf: int, deformable_groups: int):
        super().__init__()
        self._init_pyramid(nf)
        self.pcd_align = PCDAlign(nf, deformable_groups)
        self.fusion = PointwiseConv(2 * nf, nf)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        y1, y2 = self.pcd_align(self.pyramid(x1), self.pyramid(x2))
        return self.fusion(torch.cat([y1, y2], 1))


class LSTFIStep(PCDAlign):
    """One recurrent step of LSTFI (official ``pcd_align_modified``).

    ``forward(h, feats1, feats2) -> (y, new_h)``: ``y`` is the aligned feature of the gap
    between the two frames, ``new_h`` the hidden state passed to the next step.
    """

    def __init__(self, nf: int, deformable_groups: int):
        super().__init__(nf, deformable_groups)
        self.fusion = PointwiseConv(2 * nf, nf)
        self.conv_h1 = conv3(nf, nf)
        self.conv_h2 = conv3(nf, nf)
        self.fusion_1x1 = PointwiseConv(2 * nf, nf)
        self.pcd_h = EasyPCD(nf, deformable_groups)

    def forward(self, h: torch.Tensor, feats1: Pyramid, feats2: Pyramid) -> tuple[torch.Tensor, torch.Tensor]:
        y1, y2 = super().forward(feats1, feats2)
        y = self.fusion(torch.cat([y1, y2], 1))
        g = self.pcd_h(y, h)
        y = self.fusion_1x1(torch.cat([g, y], 1))
        new_h = self.conv_h2(lrelu(self.conv_h1(y)))
        return y, new_h
