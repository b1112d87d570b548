"""STDFA: spatial-temporal deformable feature aggregation.

Every output time ``j`` (query) gathers information from every other time ``i``: a deformable
3x3 neighbourhood of the key/value maps of ``i`` is sampled around each pixel, the 2 samples
most relevant to the query are blended, and the ``T - 1`` results are mixed by a softmax over
their similarity to the query.

:func:`stdan_cli.model.reference.stdfa` states it as the official code does (a loop over the
42 frame pairs, full 9-point im2col columns of keys and values); the code here computes the
same thing with less work, and ``tests/test_model_reference.py`` holds the two equal.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from stdan_cli.model.deform import KERNEL_POINTS, kernel_grid, sample, split_offset_mask
from stdan_cli.model.pcd import conv3, lrelu
from stdan_cli.model.slicing import CPU_SLICES, SlicePolicy, active

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
        nn.init.zeros_(self.conv_offset_mask.weight)  # as the official deformable convolutions: offsets and
        nn.init.zeros_(self.conv_offset_mask.bias)  # masks start at zero (kernel points at their grid places)

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return split_offset_mask(self.conv_offset_mask(feat))


class DeformableCorrelation(nn.Module):
    """Deformable top-2 attention of a query map over one key/value frame (batched over pairs).

    ``forward(q, k, v)`` with (P, C, H, W) maps returns the relevance ``w`` (P, H*W) and the
    aggregated value ``v_hat`` (P, C, H*W), as the official ``deformable_corr``:
    sample 9 deformable key candidates per pixel, keep the 2 most relevant to the query,
    blend them (and the values at the same points) with a softmax; ``w`` = query . blended key.
    """

    def __init__(self, dim: int, deformable_groups: int):
        super().__init__()
        self.offset_conv1 = conv3(2 * dim, dim)
        self.offset_conv2 = conv3(dim, dim)
        self.dcn_attention = DeformableSampler(dim, deformable_groups)

    def offset_conv1_query(self, q: torch.Tensor) -> torch.Tensor:
        """``offset_conv1(cat[q, k]) == offset_conv1_query(q) + offset_conv1_key(k)`` (a conv is
        linear in its input; the bias goes with the query): lets callers convolve each frame
        once instead of once per pair."""
        return self._offset_conv1_half(q, self.offset_conv1.weight[:, : q.shape[1]], self.offset_conv1.bias)

    def offset_conv1_key(self, k: torch.Tensor) -> torch.Tensor:
        """The key frame's half of ``offset_conv1`` (see :meth:`offset_conv1_query`)."""
        return self._offset_conv1_half(k, self.offset_conv1.weight[:, k.shape[1] :], None)

    @staticmethod
    def _offset_conv1_half(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        # computes in the weights' dtype, returns in the input's
        return F.conv2d(x.to(weight.dtype), weight, bias, padding=1).to(x.dtype)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.attend(q, k, v, self.offset_conv1(torch.cat([q, k], 1)))

    def attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, conv1_out: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The rest of :meth:`forward`, given ``offset_conv1(cat[q, k])``.

        Reference (:func:`stdan_cli.model.reference.deformable_attention`): columns Kc and Vc of
        k and v at the 9 deformed kernel points, each times its mask; relevance
        r_n = sum_c Kc[c, n] q[c]; the top 2 blended by a softmax into k_hat and v_hat;
        w = q . k_hat. The steps below say which reference step each replaces.
        """
        p, c, h, w = q.shape
        groups = self.dcn_attention.deformable_groups
        cg, hw = c // groups, h * w
        offset, mask = self.dcn_attention(lrelu(self.offset_conv2(lrelu(conv1_out))))
        mask = mask.view(p, groups, KERNEL_POINTS, hw)
        grid = kernel_grid(offset, groups)  # (P*G, 9*H, W, 2), float32

        # Reference Kc and r: r[n] = sum_c mask[g(c), n] * K[c, n] * q[c]. The mask is applied
        # after summing each group's channels (same value, fewer multiplications).
        keys = sample(k, grid, groups).view(p, groups, cg, KERNEL_POINTS, hw)
        relevance = (keys.mul_(q.view(p, groups, cg, 1, hw)).sum(2) * mask).sum(1)  # (P, 9, HW)
        top, idx = torch.topk(relevance, TOP_K, dim=1)  # (P, 2, HW)
        attn = torch.softmax(top, dim=1)
        # Reference w = q . k_hat = sum_t attn_t * (q . Kc[top_t]) = sum_t attn_t * top_t,
        # so k_hat is never formed.
        weight = (attn * top).sum(1)

        # Reference Vc and v_hat: only the 2 chosen kernel points of each group are sampled,
        # since the other 7 columns of Vc get weight 0.
        pick = idx.view(p, 1, TOP_K, hw).expand(p, groups, TOP_K, hw)
        grid_top = grid.view(p, groups, KERNEL_POINTS, hw, 2).gather(2, pick.unsqueeze(-1).expand(-1, -1, -1, -1, 2))
        values = sample(v, grid_top.view(p * groups, TOP_K * h, w, 2), groups).view(p, groups, cg, TOP_K, hw)
        coef = attn.view(p, 1, TOP_K, hw) * mask.gather(2, pick)  # (P, G, 2, HW)
        v_hat = (values * coef.unsqueeze(2)).sum(3).view(p, c, hw)
        return weight, v_hat


class STDFA(nn.Module):
    """Official ``stdfa``: ``forward(feats)`` with feats (B, T, nf, H, W).

    ``slices.stdfa_bytes`` bounds the sampled key candidates of one :meth:`DeformableCorrelation.attend`
    call (several key frames of a query are batched into one call up to that size).
    """

    slices: SlicePolicy = CPU_SLICES

    def __init__(self, nf: int, embed_dim: int, deformable_groups: int):
        super().__init__()
        self.conv_first = conv3(nf, embed_dim)
        self.qkv_maps = QKVMaps(embed_dim)
        self.deformable_corr = DeformableCorrelation(embed_dim, deformable_groups)
        self.conv_last = conv3(embed_dim, nf)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """feats: (B, T, nf, H, W) -> (B, T, nf, H, W), with the residual added.

        Reference (:func:`stdan_cli.model.reference.stdfa`): for each query frame j and each
        other frame i, ``(w_ji, v_hat_ji) = DA(q_j, k_i, v_i)``; alpha = softmax over i of
        w_ji; U_j = sum_i alpha_ji v_hat_ji; out_j = conv_last(U_j) + feats_j.
        """
        b, t, nf, h, w = feats.shape
        flat = feats.reshape(b * t, nf, h, w)
        q, k, v = self.qkv_maps(self.conv_first(flat))
        c = q.shape[1]
        corr = self.deformable_corr
        # Reference offset_conv1(cat[q_j, k_i]) for each of the T(T-1) pairs: the sum of a query
        # half and a key half, each convolved once per frame. The key halves of all frames are
        # made now, each query's half when its turn comes.
        conv_k = corr.offset_conv1_key(k).view(b, t, c, h, w)
        q, k, v = (m.view(b, t, c, h, w) for m in (q, k, v))

        budget = active(self.slices).stdfa_bytes
        per_pair = b * c * KERNEL_POINTS * h * w * q.element_size()  # one key frame's candidates
        step = t - 1 if budget is None else max(1, budget // per_pair)  # key frames per attend call
        u = []
        for j in range(t):  # reference loop over query frames j
            others = [i for i in range(t) if i != j]
            conv_q = corr.offset_conv1_query(q[:, j]).unsqueeze(1)
            weights, values = [], []
            for start in range(0, t - 1, step):  # reference loop over i != j, batched by `step`
                keys = others[start : start + step]
                n = len(keys)
                wt, vh = corr.attend(
                    q[:, j : j + 1].expand(b, n, c, h, w).reshape(-1, c, h, w),
                    k[:, keys].reshape(-1, c, h, w),
                    v[:, keys].reshape(-1, c, h, w),
                    (conv_q + conv_k[:, keys]).reshape(-1, c, h, w),
                )
                weights.append(wt.view(b, n, 1, h * w))
                values.append(vh.view(b, n, c, h * w))
            weights = weights[0] if len(weights) == 1 else torch.cat(weights, 1)  # (B, T-1, 1, HW)
            values = values[0] if len(values) == 1 else torch.cat(values, 1)  # (B, T-1, C, HW)
            # alpha = softmax over the T-1 key frames; U_j = sum_i alpha_i v_hat_i
            u.append((values * torch.softmax(weights, dim=1)).sum(1))
        del q, k, v, conv_q, conv_k, weights, values  # freed before conv_last (peak memory)
        u = torch.stack(u, 1)  # (B, T, C, HW)
        return (self.conv_last(u.view(b * t, c, h, w)) + flat).view(b, t, nf, h, w)
