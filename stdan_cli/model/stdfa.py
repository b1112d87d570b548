"""STDFA: spatial-temporal deformable feature aggregation.

Every output time ``j`` (query) gathers information from every other time ``i``: a deformable
3x3 neighbourhood of the key/value maps of ``i`` is sampled around each pixel, the 2 samples
most relevant to the query are blended, and the ``T - 1`` results are mixed by a softmax over
their similarity to the query.
"""

from __future__ import annotations

import torch
from torch import nn

from stdan_cli.model.deform import KERNEL_POINTS, deform_sample, split_offset_mask
from stdan_cli.model.pcd import conv3, lrelu

TOP_K = 2


class QKVMaps(nn.Module):
    """Per-pixel linear maps of the embedding to query, key and value."""

    def __init__(self, dim: int):
        super().__init__()
        self.w_qs = nn.Linear(dim, dim)
        self.w_ks = nn.Linear(dim, dim)
        self.w_vs = nn.Linear(dim, dim)

    def forward(self, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        t = e.permute(0, 2, 3, 1)
        back = lambda y: y.permute(0, 3, 1, 2)  # noqa: E731
        return back(self.w_qs(t)), back(self.w_ks(t)), back(self.w_vs(t))


class DeformableSampler(nn.Module):
    """Predicts offsets and masks (official ``dcn_attention``); sampling has no weights."""

    def __init__(self, dim: int, deformable_groups: int):
        super().__init__()
        self.deformable_groups = deformable_groups
        self.conv_offset_mask = conv3(dim, deformable_groups * 3 * KERNEL_POINTS)

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return split_offset_mask(self.conv_offset_mask(feat))


class DeformableCorrelation(nn.Module):
    """Deformable top-2 attention of a query map over one key/value frame (batched over pairs).

    ``forward(q, k, v)`` with (P, C, H, W) maps returns the relevance ``w`` (P, H*W) and the
    aggregated value ``v_hat`` (P, C, H*W), as the official ``deformable_corr``.
    """

    def __init__(self, dim: int, deformable_groups: int):
        super().__init__()
        self.offset_conv1 = conv3(2 * dim, dim)
        self.offset_conv2 = conv3(dim, dim)
        self.dcn_attention = DeformableSampler(dim, deformable_groups)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p, c, h, w = q.shape
        o = lrelu(self.offset_conv2(lrelu(self.offset_conv1(torch.cat([q, k], 1)))))
        offset, mask = self.dcn_attention(o)
        groups = self.dcn_attention.deformable_groups
        keys = deform_sample(k, offset, mask, groups).flatten(3)  # (P, C, 9, HW)
        values = deform_sample(v, offset, mask, groups).flatten(3)
        qf = q.flatten(2)  # (P, C, HW)
        relevance = (keys * qf.unsqueeze(2)).sum(1)  # (P, 9, HW)
        top, idx = torch.topk(relevance, TOP_K, dim=1)
        attn = torch.softmax(top, dim=1).unsqueeze(1)  # (P, 1, 2, HW)
        idx = idx.unsqueeze(1).expand(p, c, TOP_K, h * w)
        k_hat = (keys.gather(2, idx) * attn).sum(2)  # (P, C, HW)
        v_hat = (values.gather(2, idx) * attn).sum(2)
        weight = (qf * k_hat).sum(1)  # (P, HW)
        return weight, v_hat


class STDFA(nn.Module):
    def __init__(self, nf: int, embed_dim: int, deformable_groups: int):
        super().__init__()
        self.conv_first = conv3(nf, embed_dim)
        self.qkv_maps = QKVMaps(embed_dim)
        self.deformable_corr = DeformableCorrelation(embed_dim, deformable_groups)
        self.conv_last = conv3(embed_dim, nf)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """feats: (B, T, nf, H, W) -> (B, T, nf, H, W), with the residual added."""
        b, t, nf, h, w = feats.shape
        q, k, v = self.qkv_maps(self.conv_first(feats.reshape(b * t, nf, h, w)))
        c = q.shape[1]
        q, k, v = (m.view(b, t, c, h, w) for m in (q, k, v))
        out = []
        for j in range(t):  # one query frame at a time bounds memory
            others = [i for i in range(t) if i != j]
            qj = q[:, j : j + 1].expand(b, t - 1, c, h, w).reshape(-1, c, h, w)
            ki = k[:, others].reshape(-1, c, h, w)
            vi = v[:, others].reshape(-1, c, h, w)
            weight, v_hat = self.deformable_corr(qj, ki, vi)
            weight = torch.softmax(weight.view(b, t - 1, 1, h * w), dim=1)
            out.append((weight * v_hat.view(b, t - 1, c, h * w)).sum(1))
        u = torch.stack(out, 1).view(b * t, c, h, w)
        return (self.conv_last(u) + feats.reshape(b * t, nf, h, w)).view(b, t, nf, h, w)
