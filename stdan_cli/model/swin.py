"""Swin Transformer encoder/decoder used twice by STDAN (``feature_extraction``, ``feature_recon``).

A SwinIR-style body: conv -> tokens -> residual Swin transformer blocks (RSTB) -> conv + skip.
Window masks and relative-position biases are computed for the actual feature size, so any
height and width that are multiples of the window size work. The checkpoint's fixed-size
``attn_mask`` buffers (made for the nominal 32x32) are kept only so official files load strictly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def relative_position_index(window_size: int) -> torch.Tensor:
    """(N, N) index into the bias table: (ya - yb + w - 1) * (2w - 1) + (xa - xb + w - 1)."""
    coords = torch.stack(torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij"))
    coords = coords.flatten(1)  # (2, N), row-major tokens
    rel = coords[:, :, None] - coords[:, None, :] + (window_size - 1)
    return rel[0] * (2 * window_size - 1) + rel[1]


def window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * nW, ws*ws, C), windows and tokens in row-major order."""
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws * ws, c)


def window_reverse(windows: torch.Tensor, ws: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B * nW, ws*ws, C) -> (B, H, W, C)."""
    c = windows.shape[-1]
    x = windows.view(-1, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, w, c)


def shift_window_mask(h: int, w: int, ws: int, shift: int, device=None) -> torch.Tensor:
    """(nW, N, N) additive mask (0 or -100) for the cyclically shifted windows of an (h, w) map."""
    labels = torch.zeros(1, h, w, 1, device=device)
    region = 0
    for rows in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
        for cols in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
            labels[:, rows, cols, :] = region
            region += 1
    win = window_partition(labels, ws).squeeze(-1)  # (nW, N)
    diff = win[:, None, :] - win[:, :, None]
    return torch.zeros_like(diff).masked_fill(diff != 0, -100.0)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside a window with a learned relative-position bias."""

    def __init__(self, dim: int, window_size: int, num_heads: int):
        super().__init__()
        self.dim, self.window_size, self.num_heads = dim, window_size, num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        self.register_buffer("relative_position_index", relative_position_index(window_size))
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def position_bias(self) -> torch.Tensor:
        """(heads, N, N) bias for the tokens of one window."""
        n = self.window_size**2
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(n, n, -1).permute(2, 0, 1).contiguous()

    # Windows per attention step: small enough for the logits to stay in cache.
    windows_per_step = 32

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B*nW, N, C) windows of B images; mask: (nW, N, N) or None.

        softmax(scale * q k^T + bias [+ mask]) v per head, computed a few windows at a time
        with one fused ``baddbmm`` for the scaled logits plus bias and mask.
        """
        bw, n, c = x.shape
        heads = self.num_heads
        nw = mask.shape[0] if mask is not None else bw
        qkv = self.qkv(x).view(bw, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        q, k, v = (t.reshape(bw * heads, n, c // heads) for t in qkv)
        k = k.transpose(1, 2)
        step = min(self.windows_per_step, nw)
        bias = self.position_bias().to(q.dtype)  # (heads, N, N)
        if mask is not None:  # (nW*heads, N, N): bias plus each window's shift mask
            add = (mask.unsqueeze(1).to(q.dtype) + bias).view(nw * heads, n, n)
        else:  # the same bias for every window of a step
            add = bias.expand(step, heads, n, n).reshape(step * heads, n, n)
        out = torch.empty_like(q)
        for first in range(0, bw, nw):  # one image at a time: the mask repeats per image
            for w0 in range(0, nw, step):
                cnt = min(step, nw - w0)
                a = add[w0 * heads : (w0 + cnt) * heads] if mask is not None else add[: cnt * heads]
                rows = slice((first + w0) * heads, (first + w0 + cnt) * heads)
                logits = torch.baddbmm(a, q[rows], k[rows], alpha=self.scale)
                torch.bmm(logits.softmax(dim=-1), v[rows], out=out[rows])
        x = out.view(bw, heads, n, c // heads).transpose(1, 2).reshape(bw, n, c)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))  # exact (erf) GELU


class SwinBlock(nn.Module):
    """Pre-norm Swin block; odd blocks of a layer use a cyclic shift of half a window."""

    def __init__(self, dim: int, num_heads: int, window_size: int, shift: int, mlp_ratio: float, nominal_size: int):
        super().__init__()
        self.window_size, self.shift = window_size, shift
        if shift:
            # Kept for strict loading of official checkpoints only; forward computes the mask
            # for the actual size.
            self.register_buffer("attn_mask", shift_window_mask(nominal_size, nominal_size, window_size, shift))
        else:
            self.attn_mask = None
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self._mask_cache: dict[tuple, torch.Tensor] = {}

    def _mask(self, h: int, w: int, device: torch.device) -> torch.Tensor:
        key = (h, w, device)
        if key not in self._mask_cache:
            self._mask_cache[key] = shift_window_mask(h, w, self.window_size, self.shift, device)
        return self._mask_cache[key]

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        h, w = size
        b, _, c = x.shape
        ws, s = self.window_size, self.shift
        y = self.norm1(x).view(b, h, w, c)
        if s:
            y = torch.roll(y, shifts=(-s, -s), dims=(1, 2))
        mask = self._mask(h, w, x.device) if s else None
        y = self.attn(window_partition(y, ws), mask=mask)
        y = window_reverse(y, ws, h, w)
        if s:
            y = torch.roll(y, shifts=(s, s), dims=(1, 2))
        x = x + y.reshape(b, h * w, c)
        return x + self.mlp(self.norm2(x))


class BlockGroup(nn.Module):
    """The blocks of one RSTB (official name ``residual_group``)."""

    def __init__(self, dim: int, depth: int, num_heads: int, window_size: int, mlp_ratio: float, nominal_size: int):
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinBlock(dim, num_heads, window_size, 0 if j % 2 == 0 else window_size // 2, mlp_ratio, nominal_size)
            for j in range(depth)
        )

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, size)
        return x


def to_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H*W, C)."""
    return x.flatten(2).transpose(1, 2)


def to_image(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, H*W, C) -> (B, C, H, W)."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], *size)


class RSTB(nn.Module):
    """Residual Swin transformer block: blocks -> 3x3 conv on the image -> + input."""

    def __init__(self, dim: int, depth: int, num_heads: int, window_size: int, mlp_ratio: float, nominal_size: int):
        super().__init__()
        self.residual_group = BlockGroup(dim, depth, num_heads, window_size, mlp_ratio, nominal_size)
        self.conv = nn.Conv2d(dim, dim, 3, 1, 1)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        y = to_image(self.residual_group(x, size), size)
        return to_tokens(self.conv(y)) + x


class PatchEmbed(nn.Module):
    """Only a LayerNorm over the tokens (patch size 1); named as in the checkpoint."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(to_tokens(x))


class SwinEncoder(nn.Module):
    """conv_first -> tokens -> LayerNorm -> RSTBs -> LayerNorm -> conv_after_body (+ skip) -> conv_last."""

    def __init__(
        self,
        in_channels: int,
        embed_dim: int,
        depths: tuple[int, ...],
        num_heads: int,
        window_size: int,
        mlp_ratio: float,
        nominal_size: int = 32,
    ):
        super().__init__()
        self.conv_first = nn.Conv2d(in_channels, embed_dim, 3, 1, 1)
        self.patch_embed = PatchEmbed(embed_dim)
        self.layers = nn.ModuleList(
            RSTB(embed_dim, d, num_heads, window_size, mlp_ratio, nominal_size) for d in depths
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = nn.Conv2d(embed_dim, embed_dim, 3, 1, 1)
        self.conv_last = nn.Conv2d(embed_dim, in_channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = (x.shape[2], x.shape[3])
        z = self.conv_first(x)
        t = self.patch_embed(z)
        for layer in self.layers:
            t = layer(t, size)
        body = to_image(self.norm(t), size)
        return self.conv_last(self.conv_after_body(body) + z)
