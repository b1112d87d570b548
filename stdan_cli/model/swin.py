"""The Swin transformer STDAN uses twice: as the encoder ``feature_extraction`` and as the
decoder ``feature_recon`` (one official class, ``Spatial_decoder``, with 2 or 6 stages).

A SwinIR-style body: conv -> tokens -> residual Swin transformer blocks (RSTB) -> conv + skip.
Window masks and relative-position biases are computed for the actual feature size, so any
height and width that are multiples of the window size work. The checkpoint's fixed-size
``attn_mask`` buffers (made for the nominal 32x32) are kept only so official files load strictly.

The blocks here are arranged for speed (tokens kept in window order, a few windows at a time);
:mod:`stdan_cli.model.reference` states the same block as the paper does (roll, partition,
attend, reverse, roll), and ``tests/test_model_reference.py`` holds the two equal.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from stdan_cli.model.slicing import CPU_SLICES, SlicePolicy, active, per_size, tracing


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
    """(nW, N, N) additive mask (0 or -100) for the cyclically shifted windows of an (h, w) map.

    On the rolled grid, rows fall into three regions: ``y < h - ws``, ``h - ws <= y < h - shift``
    and ``y >= h - shift`` (columns likewise); two tokens attend to each other only if their
    region labels ``3 * row_region + col_region`` are equal.
    """
    rows = torch.arange(h, device=device).view(1, h, 1, 1)
    cols = torch.arange(w, device=device).view(1, 1, w, 1)
    region_y = (rows >= h - ws).long() + (rows >= h - shift).long()
    region_x = (cols >= w - ws).long() + (cols >= w - shift).long()
    labels = (3 * region_y + region_x).float()  # (1, h, w, 1)
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

    def forward(self, x: torch.Tensor, add: torch.Tensor) -> torch.Tensor:
        """x: (nW, N, C) windows; add: (nW*heads, N, N) relative-position bias (plus shift mask).

        softmax(scale * q k^T + add) v per head; one fused ``baddbmm`` makes the logits.
        Computes in the dtype of its weights (see :mod:`stdan_cli.model.precision`); the
        result is in that dtype too.
        """
        nw, n, c = x.shape
        heads, dtype = self.num_heads, self.qkv.weight.dtype
        qkv = self.qkv(x.to(dtype)).view(nw, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        q, k, v = (t.reshape(nw * heads, n, c // heads) for t in qkv)
        logits = torch.baddbmm(add.to(dtype), q, k.transpose(1, 2), alpha=self.scale)
        x = torch.bmm(logits.softmax(dim=-1), v)
        return self.proj(x.view(nw, heads, n, c // heads).transpose(1, 2).reshape(nw, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Computes and returns in the dtype of its weights."""
        return self.fc2(F.gelu(self.fc1(x.to(self.fc1.weight.dtype))))  # exact (erf) GELU


def window_order(h: int, w: int, ws: int, shift: int, device=None) -> torch.Tensor:
    """Token indices that take an (h, w) map (row-major tokens) to its windows, after the
    cyclic shift by (-shift, -shift): ``x[:, order]`` is roll + :func:`window_partition` in one gather."""
    idx = torch.arange(h * w, device=device).view(1, h, w, 1)
    if shift:
        idx = torch.roll(idx, shifts=(-shift, -shift), dims=(1, 2))
    return window_partition(idx, ws).reshape(-1)


class SwinBlock(nn.Module):
    """Pre-norm Swin block; odd blocks of a layer use a cyclic shift of half a window.

    The paper's block (:func:`stdan_cli.model.reference.swin_block`) is
    ``t + A(norm1(t))`` with A = roll -> partition -> attend -> reverse -> roll, then
    ``+ mlp(norm2(.))``. Every step of it is per token or per window, so this block receives
    its tokens already in its own (shifted) window order (:class:`BlockGroup` puts them there),
    which replaces roll + partition and reverse + roll, and runs as many windows at a time
    (:meth:`step`) as ``slices.swin_logit_bytes`` of attention logits hold, so that the
    temporaries of a step stay in cache.
    """

    slices: SlicePolicy = CPU_SLICES
    drop_path: float = 0.0  # stochastic depth in training (see SwinTransformer.set_drop_path); not a weight

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
        self._layouts: dict[tuple, tuple] = {}

    def layout(self, h: int, w: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(order, shift mask or None) for an (h, w) map: ``x[:, order]`` puts row-major tokens
        into this block's (shifted) window order. Cached per size (see :func:`per_size`)."""

        def build():
            order = window_order(h, w, self.window_size, self.shift, device)
            mask = shift_window_mask(h, w, self.window_size, self.shift, device) if self.shift else None
            return order, mask

        return per_size(self._layouts, (h, w, device), build)

    def forward(self, windows: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """windows: (B, H*W, C) tokens in this block's window order -> the same, transformed."""
        b, length, c = windows.shape
        n, heads = self.window_size**2, self.attn.num_heads
        nw = length // n  # windows per image
        mask = self.layout(*size, windows.device)[1]
        step = self.windows_per_step(nw)
        # The attention's additive term for every window: the relative-position bias plus, in
        # shifted blocks, that window's shift mask; built once per block, not per slice.
        bias = self.attn.position_bias().float()  # (heads, N, N)
        if mask is not None:  # (nW*heads, N, N)
            add = (mask.unsqueeze(1) + bias).view(nw * heads, n, n)
        else:  # the same bias for every window: (step*heads, N, N)
            add = bias.expand(step, heads, n, n).reshape(step * heads, n, n)
        add = add.to(self.attn.qkv.weight.dtype)

        windows = windows.view(b * nw, n, c)
        if tracing():
            # A traced or exported graph takes the batch as a symbolic size (one graph for any
            # number of images), so every image's windows go through in one step, the
            # additive term repeated per image. Per window this is the loop below.
            y = windows + self.attn(self.norm1(windows), add.repeat(b, 1, 1))
            return (y + self.mlp(self.norm2(y))).view(b, length, c)
        keep = self.branch_scales(b, windows.device) if self.training and self.drop_path > 0 else None
        # Each slice's result is written into its place in ``out`` (no concatenation afterwards).
        # Where autograd records the block (training), slices are concatenated instead: a
        # tensor written in place by slices cannot be differentiated through.
        out = None if torch.is_grad_enabled() else torch.empty_like(windows)
        parts = []
        for image in range(b):  # the mask repeats per image
            for w0, cnt in _spans(nw, step):
                first = image * nw + w0
                y = windows[first : first + cnt]
                a = add[w0 * heads : (w0 + cnt) * heads] if mask is not None else add[: cnt * heads]
                if keep is None:
                    y, mlp = self.step(y, a)
                else:  # reference: t + reverse/roll(A(partition/roll(norm1(t)))); per window here
                    y = y + self.attn(self.norm1(y), a) * keep[image, 0]
                    mlp = self.mlp(self.norm2(y)) * keep[image, 1]
                if out is None:
                    parts.append(y + mlp)  # reference: t + mlp(norm2(t))
                else:
                    torch.add(y, mlp, out=out[first : first + cnt])
        if out is None:
            out = parts[0] if len(parts) == 1 else torch.cat(parts)
        return out.view(b, length, c)

    def step(self, y: torch.Tensor, add: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A slice of windows (cnt, N, C) through the attention branch, ``y + A(norm1(y))``
        (the reference's roll/partition/attend/reverse/roll, per window), and that result's
        MLP branch ``mlp(norm2(.))``, returned apart: the caller adds them where the block's
        output goes."""
        y = y + self.attn(self.norm1(y), add)
        return y, self.mlp(self.norm2(y))

    def windows_per_step(self, windows: int) -> int:
        """How many of an image's ``windows`` one step attends: as many as
        ``slices.swin_logit_bytes`` of attention logits hold in the attention's dtype (at least
        one), or all of them."""
        budget = active(self.slices).swin_logit_bytes
        if budget is None:
            return windows
        n = self.window_size**2
        one = self.attn.num_heads * n * n * self.attn.qkv.weight.element_size()
        return max(1, min(budget // one, windows))

    def branch_scales(self, batch: int, device: torch.device) -> torch.Tensor:
        """Stochastic depth (timm's ``DropPath``, as the official Swin blocks use it): per image,
        each residual branch (attention, MLP) is kept with probability 1 - p and then scaled by
        1 / (1 - p), else dropped. (batch, 2) factors drawn from PyTorch's generator."""
        keep = 1.0 - self.drop_path
        return torch.empty(batch, 2, device=device).bernoulli_(keep).div_(keep)


def _spans(total: int, step: int) -> list[tuple[int, int]]:
    """(start, count) of consecutive slices of ``step`` covering ``range(total)``."""
    if step == total:  # also the traced case, where ``total`` may be symbolic
        return [(0, total)]
    return [(start, min(step, total - start)) for start in range(0, total, step)]


class BlockGroup(nn.Module):
    """The blocks of one RSTB (official name ``residual_group``).

    Reference: each block takes row-major tokens, rolls and partitions them into its windows,
    and reverses and rolls back. Here the tokens stay in window order from block to block: one
    gather per block moves them from one block's window order straight to the next one's
    (the composition of the reverse + roll of one block and the roll + partition of the next),
    and a last gather returns them to row-major order.
    """

    def __init__(self, dim: int, depth: int, num_heads: int, window_size: int, mlp_ratio: float, nominal_size: int):
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinBlock(dim, num_heads, window_size, 0 if j % 2 == 0 else window_size // 2, mlp_ratio, nominal_size)
            for j in range(depth)
        )
        self._gathers: dict[tuple, list[torch.Tensor]] = {}

    def gathers(self, h: int, w: int, device: torch.device) -> list[torch.Tensor]:
        """depth + 1 index vectors: row-major -> block 0's order -> block 1's ... -> row-major.
        Cached per size (see :func:`per_size`)."""

        def build():
            orders = [block.layout(h, w, device)[0] for block in self.blocks]
            steps, back = [orders[0]], torch.argsort(orders[0])  # back: window order -> row-major
            for order in orders[1:]:  # windows_next = x[:, order] = windows[:, back][:, order]
                steps.append(back[order])
                back = torch.argsort(order)
            return steps + [back]

        return per_size(self._gathers, (h, w, device), build)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        # index_select copies whole token rows; the same gather as ``x[:, step]``, about 2.4x faster on CPU
        steps = self.gathers(*size, x.device)
        x = x.index_select(1, steps[0])
        for block, step in zip(self.blocks, steps[1:]):
            x = block(x, size).index_select(1, step)
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


class SwinTransformer(nn.Module):
    """conv_first -> tokens -> LayerNorm -> RSTBs -> LayerNorm -> conv_after_body (+ skip) -> conv_last.

    The official ``Spatial_decoder``; STDAN's encoder (``feature_extraction``) and decoder
    (``feature_recon``) are both instances, differing only in the number of RSTBs.
    """

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

    def set_drop_path(self, rate: float) -> None:
        """Stochastic depth for training, as the official Swin stacks set it: the blocks of this
        stack, in order, get rates ``linspace(0, rate, number of blocks)``. Inference (eval mode)
        never drops."""
        blocks = [block for layer in self.layers for block in layer.residual_group.blocks]
        for block, p in zip(blocks, torch.linspace(0, rate, len(blocks)).tolist()):
            block.drop_path = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = (x.shape[2], x.shape[3])
        z = self.conv_first(x)
        t = self.patch_embed(z)
        for layer in self.layers:
            t = layer(t, size)
        body = to_image(self.norm(t), size)
        return self.conv_last(self.conv_after_body(body) + z)
