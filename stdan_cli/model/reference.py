"""The Swin transformer and STDFA written the way the paper and the official code state them.

The modules in :mod:`~stdan_cli.model.swin` and :mod:`~stdan_cli.model.stdfa` compute the same
functions in a form chosen for speed (tokens kept in window order, chunks, pairs batched,
per-frame halves of a convolution, only the chosen values sampled). The functions here take
those modules and run their parameters through the plain formulation instead:

- Swin block: roll, partition into windows, attend (with the relative-position bias and the
  shift mask), reverse the partition, roll back; then the MLP;
- STDFA: a loop over the T(T-1) ordered frame pairs, each one deformable attention with the full
  9-point columns of keys and values, as in the official ``deformable_corr``.

They are slow and meant for tests and for reading: ``tests/test_model_reference.py`` holds the
fast modules equal to them. :func:`stdan_forward` runs a whole :class:`STDAN` through them.
"""

from __future__ import annotations

import torch

from stdan_cli.model.deform import KERNEL_POINTS, deform_sample
from stdan_cli.model.pcd import lrelu
from stdan_cli.model.stdfa import STDFA, TOP_K, DeformableCorrelation
from stdan_cli.model.swin import (
    SwinBlock,
    SwinTransformer,
    WindowAttention,
    shift_window_mask,
    to_image,
    to_tokens,
    window_partition,
    window_reverse,
)


def window_attention(attn: WindowAttention, windows: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """windows (B*nW, N, C) -> (B*nW, N, C): per head softmax(scale q k^T + bias (+ mask)) v, then proj."""
    bnw, n, c = windows.shape
    heads = attn.num_heads
    qkv = attn.qkv(windows).reshape(bnw, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]  # (B*nW, heads, N, C/heads)
    logits = (q * attn.scale) @ k.transpose(-2, -1) + attn.position_bias().unsqueeze(0)
    if mask is not None:  # mask (nW, N, N) repeats for every image of the batch
        nw = mask.shape[0]
        logits = (logits.view(bnw // nw, nw, heads, n, n) + mask.view(1, nw, 1, n, n)).view(bnw, heads, n, n)
    out = logits.softmax(dim=-1) @ v
    return attn.proj(out.transpose(1, 2).reshape(bnw, n, c))


def swin_block(block: SwinBlock, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """x (B, H*W, C) row-major tokens -> the same after the block."""
    h, w = size
    b, _, c = x.shape
    ws, shift = block.window_size, block.shift
    y = block.norm1(x).view(b, h, w, c)
    if shift:
        y = torch.roll(y, shifts=(-shift, -shift), dims=(1, 2))
    windows = window_partition(y, ws)
    mask = shift_window_mask(h, w, ws, shift, x.device) if shift else None
    y = window_reverse(window_attention(block.attn, windows, mask), ws, h, w)
    if shift:
        y = torch.roll(y, shifts=(shift, shift), dims=(1, 2))
    x = x + y.reshape(b, h * w, c)
    return x + block.mlp(block.norm2(x))


def swin_transformer(module: SwinTransformer, x: torch.Tensor) -> torch.Tensor:
    """(M, C, H, W) -> (M, C, H, W): the official ``Spatial_decoder`` forward."""
    size = (x.shape[2], x.shape[3])
    z = module.conv_first(x)
    t = module.patch_embed(z)
    for layer in module.layers:  # RSTB
        s = t
        for block in layer.residual_group.blocks:
            s = swin_block(block, s, size)
        t = to_tokens(layer.conv(to_image(s, size))) + t
    return module.conv_last(module.conv_after_body(to_image(module.norm(t), size)) + z)


def deformable_attention(
    corr: DeformableCorrelation, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The official ``deformable_corr``: (B, C, H, W) maps -> w (B, H*W), v_hat (B, C, H*W)."""
    b, c, h, w = q.shape
    groups = corr.dcn_attention.deformable_groups
    o = lrelu(corr.offset_conv2(lrelu(corr.offset_conv1(torch.cat([q, k], 1)))))
    offset, mask = corr.dcn_attention(o)
    kc = deform_sample(k, offset, mask, groups).view(b, c, KERNEL_POINTS, h * w)  # Kc
    vc = deform_sample(v, offset, mask, groups).view(b, c, KERNEL_POINTS, h * w)  # Vc
    q = q.reshape(b, c, 1, h * w)
    r = (kc * q).sum(1)  # (B, 9, HW): r_n = sum_c Kc[c, n] q[c]
    top, idx = torch.topk(r, TOP_K, dim=1)
    a = torch.softmax(top, dim=1).unsqueeze(1)  # (B, 1, 2, HW)
    chosen = idx.unsqueeze(1).expand(b, c, TOP_K, h * w)
    k_hat = (kc.gather(2, chosen) * a).sum(2)  # (B, C, HW)
    v_hat = (vc.gather(2, chosen) * a).sum(2)
    weight = (q.squeeze(2) * k_hat).sum(1)
    return weight, v_hat


def stdfa(module: STDFA, feats: torch.Tensor) -> torch.Tensor:
    """feats (B, T, nf, H, W) -> (B, T, nf, H, W): the official ``stdfa`` forward."""
    b, t, nf, h, w = feats.shape
    flat = feats.reshape(b * t, nf, h, w)
    q, k, v = module.qkv_maps(module.conv_first(flat))
    c = q.shape[1]
    q, k, v = (m.view(b, t, c, h, w) for m in (q, k, v))
    u = []
    for j in range(t):
        weights, values = [], []
        for i in range(t):
            if i != j:
                wt, vh = deformable_attention(module.deformable_corr, q[:, j], k[:, i], v[:, i])
                weights.append(wt)
                values.append(vh)
        alpha = torch.softmax(torch.stack(weights, 1), dim=1)  # (B, T-1, HW)
        u.append((alpha.unsqueeze(2) * torch.stack(values, 1)).sum(1))  # (B, C, HW)
    u = torch.stack(u, 1).view(b * t, c, h, w)
    return (module.conv_last(u) + flat).view(b, t, nf, h, w)


def stdan_forward(model, x: torch.Tensor) -> torch.Tensor:
    """``model(x)`` for an :class:`~stdan_cli.model.STDAN`, with its Swin transformers and its
    STDFA run through the functions above (the other parts are already written plainly)."""
    b, n, c, h, w = x.shape
    nf = model.config.nf
    l1 = swin_transformer(model.feature_extraction, lrelu(model.conv_first(x.reshape(b * n, c, h, w))))
    l1, l2, l3 = model.pyramid(l1)
    levels = [lv.view(b, n, *lv.shape[1:]) for lv in (l1, l2, l3)]
    mids = model.interpolate_features([tuple(lv[:, t] for lv in levels) for t in range(n)])
    feats = []
    for t in range(n):
        feats.append(levels[0][:, t])
        if t < n - 1:
            feats.append(mids[:, t])
    feats = stdfa(model.stdfa, torch.stack(feats, 1))
    y = swin_transformer(model.feature_recon, feats.reshape(b * (2 * n - 1), nf, h, w))
    out = model.conv_last(model.upsample(model.conv_before_upsample(y)))
    return out.view(b, 2 * n - 1, 3, *out.shape[-2:])
