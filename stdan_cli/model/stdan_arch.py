"""The STDAN network (official ``STTrans2``), module names equal to the official state_dict.

Data flow for N low-resolution frames (B, N, 3, H, W), H and W multiples of 8:

1. shallow features per frame: ``conv_first`` + LeakyReLU, then the Swin encoder
   ``feature_extraction`` -> L1; a 3-level pyramid (L1, L2, L3);
2. LSTFI: a bidirectional recurrence of one shared ``pcd_align_modified`` step over the N-1
   gaps, fused by ``fusion_f_b`` into the features of the missing in-between frames;
3. the 2N-1 features [L1_0, M_0, L1_1, ..., L1_{N-1}] go through ``stdfa`` (aggregation across
   time) and the Swin decoder ``feature_recon`` (the same Swin transformer class as the encoder);
4. pixel-shuffle upsampling x4 to RGB: (B, 2N-1, 3, 4H, 4W), unclamped.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd

import torch
from torch import nn

from stdan_cli.model.pcd import LSTFIStep, PointwiseConv, PyramidMixin, conv3, lrelu
from stdan_cli.model.slicing import SlicePolicy, tracing
from stdan_cli.model.stdfa import STDFA
from stdan_cli.model.swin import SwinTransformer


def output_positions(n_inputs: int, skip_outputs: int = 0, inputs_only: bool = False) -> list[int]:
    """Which of the 2N-1 outputs [in0, mid, in1, ...] a window returns: all but the first
    ``skip_outputs``, and with ``inputs_only`` only the even positions (the input frames' times)."""
    return [p for p in range(skip_outputs, 2 * n_inputs - 1) if not (inputs_only and p % 2)]


@dataclass(frozen=True)
class STDANConfig:
    """Hyper-parameters. The defaults are the released checkpoint's (``STTrans2(scale=4,
    n_inputs=4, n_outputs=7, nf=64, embed_dim=72, window_size=8)``)."""

    nf: int = 64
    embed_dim: int = 72
    num_heads: int = 6
    window_size: int = 8
    mlp_ratio: float = 2.0
    encoder_depths: tuple[int, ...] = (6, 6)
    decoder_depths: tuple[int, ...] = (6, 6, 6, 6, 6, 6)
    deformable_groups: int = 8
    scale: int = 4

    @classmethod
    def small(cls) -> "STDANConfig":
        """A tiny configuration (same structure, few channels and blocks) for fast tests."""
        return cls(nf=16, embed_dim=24, num_heads=2, encoder_depths=(2,), decoder_depths=(2,), deformable_groups=8)

    @property
    def size_multiple(self) -> int:
        """Input H and W must be multiples of this (Swin windows; the pyramid halves twice)."""
        return self.window_size * 4 // gcd(self.window_size, 4)


class STDAN(PyramidMixin, nn.Module):
    """STDAN: N frames (B, N, 3, H, W) in [0, 1] -> 2N-1 frames (B, 2N-1, 3, 4H, 4W).

    Output order is [in0, mid(0,1), in1, mid(1,2), ..., in(N-1)]; H and W must be multiples
    of ``config.size_multiple`` (use :func:`stdan_cli.model.upscale_window` for any size).
    """

    def __init__(self, config: STDANConfig | None = None):
        super().__init__()
        cfg = self.config = config or STDANConfig()
        nf, groups = cfg.nf, cfg.deformable_groups
        swin = dict(num_heads=cfg.num_heads, window_size=cfg.window_size, mlp_ratio=cfg.mlp_ratio)
        self.conv_first = conv3(3, nf)
        self._init_pyramid(nf)
        self.pcd_align_modified = LSTFIStep(nf, groups)
        self.feature_extraction = SwinTransformer(nf, cfg.embed_dim, cfg.encoder_depths, **swin)
        self.stdfa = STDFA(nf, cfg.embed_dim, groups)
        self.feature_recon = SwinTransformer(nf, cfg.embed_dim, cfg.decoder_depths, **swin)
        self.conv_before_upsample = nn.Sequential(conv3(nf, nf), nn.LeakyReLU(inplace=True))  # slope 0.01
        stages = []
        for _ in range(cfg.scale.bit_length() - 1):  # log2(scale) stages of x2
            stages += [conv3(nf, 4 * nf), nn.PixelShuffle(2)]
        self.upsample = nn.Sequential(*stages)
        self.conv_last = conv3(nf, 3)
        self.fusion_f_b = PointwiseConv(2 * nf, nf)

    def set_slice_policy(self, policy: SlicePolicy) -> None:
        """Use ``policy`` for every sliced step (default :data:`~stdan_cli.model.slicing.CPU_SLICES`).
        Slicing bounds temporaries only; outputs do not depend on it."""
        for module in self.modules():
            if "slices" in type(module).__dict__:
                module.slices = policy

    @property
    def slice_policy(self) -> SlicePolicy:
        return self.stdfa.slices

    @property
    def frames_dtype(self) -> torch.dtype:
        """The dtype frames must have: that of the layer that reads them (``conv_first``)."""
        return self.conv_first.weight.dtype

    @property
    def frames_device(self) -> torch.device:
        """The device frames must be on: that of the layer that reads them."""
        return self.conv_first.weight.device

    def interpolate_features(self, pyramids: list) -> torch.Tensor:
        """LSTFI: features (B, N-1, nf, H, W) of the frames between consecutive inputs, from
        each input's pyramid (L1, L2, L3).

        A forward recurrence ``y, h = step(h, p[i], p[i+1])`` over the gaps i = 0..N-2, a
        backward one ``step(h, p[i+1], p[i])`` over i = N-2..0 (h starts at 0), then
        ``fusion_f_b`` of the two results per gap. The two recurrences run one after the
        other, as in the official code.
        """
        n = len(pyramids)
        l1 = pyramids[0][0]
        forward, backward = [], []
        h = torch.zeros_like(l1)
        for i in range(n - 1):
            y, h = self.pcd_align_modified(h, pyramids[i], pyramids[i + 1])
            forward.append(y)
        h = torch.zeros_like(l1)
        for i in reversed(range(n - 1)):
            y, h = self.pcd_align_modified(h, pyramids[i + 1], pyramids[i])
            backward.append(y)
        backward.reverse()
        b, nf, hh, ww = l1.shape
        pairs = torch.cat([torch.stack(forward, 1), torch.stack(backward, 1)], 2)  # (B, N-1, 2nf, H, W)
        return self.fusion_f_b(pairs.view(-1, 2 * nf, hh, ww)).view(b, n - 1, nf, hh, ww)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reconstruct(self.extract_features(x))

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        """Step 1 for each frame on its own: (B, N, 3, H, W) -> level-1 features (B, N, nf, H, W).

        Frames are independent here, so a frame shared by two overlapping windows can be
        encoded once and its features reused (see :meth:`reconstruct`).
        """
        b, n, c, h, w = x.shape
        m = self.config.size_multiple
        if h % m or w % m:
            raise ValueError(f"STDAN needs H and W multiples of {m}, got {h}x{w}; use upscale_window() to pad")
        l1 = self.feature_extraction(lrelu(self.conv_first(x.reshape(b * n, c, h, w))))
        return l1.view(b, n, *l1.shape[1:])

    def reconstruct(self, l1: torch.Tensor, skip_outputs: int = 0, inputs_only: bool = False) -> torch.Tensor:
        """Steps 2-4: level-1 features (B, N, nf, H, W) -> frames (B, T, 3, sH, sW): outputs
        ``skip_outputs``..2N-2, or with ``inputs_only`` only those at the input times (even
        positions), T of them (see :func:`output_positions`).

        The decoder and upsampling run per output frame, so outputs left out are not
        computed: earlier ones a caller already has from an overlapping window, and the
        in-between frames when only a sharper video at the same rate is wanted. (Those still
        take part in STDFA, so the kept outputs are the same either way.)
        """
        n = l1.shape[1]
        return self.decode(self.aggregate(l1)[:, output_positions(n, skip_outputs, inputs_only)])

    def aggregate(self, l1: torch.Tensor) -> torch.Tensor:
        """Steps 2-3: level-1 features (B, N, nf, H, W) -> the features of all 2N-1 output
        times (B, 2N-1, nf, H, W): the inputs' and LSTFI's in-between ones, through STDFA."""
        b, n, nf, h, w = l1.shape
        l1, l2, l3 = self.pyramid(l1.reshape(b * n, nf, h, w))
        levels = [lv.view(b, n, *lv.shape[1:]) for lv in (l1, l2, l3)]
        pyramids = [tuple(lv[:, t] for lv in levels) for t in range(n)]
        mids = self.interpolate_features(pyramids)

        feats = torch.empty(b, 2 * n - 1, nf, h, w, dtype=l1.dtype, device=l1.device)
        feats[:, 0::2] = levels[0]
        feats[:, 1::2] = mids
        return self.stdfa(feats)

    def decode(self, feats: torch.Tensor) -> torch.Tensor:
        """Step 4: aggregated features (B, T, nf, H, W) -> frames (B, T, 3, sH, sW) through the
        Swin decoder and pixel-shuffle upsampling."""
        b, t, nf, h, w = feats.shape
        y = self.feature_recon(feats.reshape(b * t, nf, h, w))
        s = self.config.scale
        if tracing():
            # A traced or exported graph takes T as a symbolic size (one graph for every
            # choice of outputs), so its frames go through the upsampling together.
            return self.conv_last(self.upsample(self.conv_before_upsample(y))).view(b, t, 3, s * h, s * w)
        # Upsampling frame by frame: activations are largest there (256 channels at 2x
        # resolution), so one frame at a time bounds peak memory.
        y = y.view(b, t, nf, h, w)
        out = torch.empty(b, t, 3, s * h, s * w, dtype=y.dtype, device=y.device)
        for i in range(t):
            out[:, i] = self.conv_last(self.upsample(self.conv_before_upsample(y[:, i])))
        return out
