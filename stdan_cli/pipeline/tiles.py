"""Spatial tiles: frames larger than the memory budget go through the model in overlapping
rectangles whose cores are stitched into the output."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from stdan_cli.upscalers import Upscaler


@dataclass(frozen=True)
class Tile:
    """A rectangle of the input given to the model (with overlap) and the core it is
    responsible for in the output; all in input pixels, end-exclusive."""

    y0: int
    y1: int
    x0: int
    x1: int
    core_y0: int
    core_y1: int
    core_x0: int
    core_x1: int


def _spans(size: int, core: int, overlap: int, multiple: int) -> Iterator[tuple[int, int, int, int]]:
    for c0 in range(0, size, core):
        c1 = min(size, c0 + core)
        s0 = max(0, c0 - overlap) // multiple * multiple  # window grid of the model stays aligned
        s1 = min(size, c1 + overlap)
        yield s0, s1, c0, c1


def plan_tiles(height: int, width: int, tile: int | None, overlap: int, multiple: int = 8) -> list[Tile]:
    """Tiles whose cores cover the frame; ``tile`` is the core size (None: one tile).
    Cores are multiples of ``multiple`` so every tile's origin stays on the model's grid."""
    if tile is None or (tile >= height and tile >= width):
        return [Tile(0, height, 0, width, 0, height, 0, width)]
    core = max(multiple, tile // multiple * multiple)
    return [
        Tile(y0, y1, x0, x1, cy0, cy1, cx0, cx1)
        for y0, y1, cy0, cy1 in _spans(height, core, overlap, multiple)
        for x0, x1, cx0, cx1 in _spans(width, core, overlap, multiple)
    ]


def auto_tile(height: int, width: int, bytes_per_pixel: int, budget_bytes: int, overlap: int, multiple: int = 8) -> int | None:
    """The largest square core (a multiple of ``multiple``) whose tile fits the memory budget,
    or None when the whole frame fits."""
    if height * width * bytes_per_pixel <= budget_bytes:
        return None
    side = int((budget_bytes / bytes_per_pixel) ** 0.5) - 2 * overlap
    return max(multiple, side // multiple * multiple)


def tile_batches(tiles: Sequence[Tile], batch: int) -> list[tuple[int, ...]]:
    """Indices of ``tiles`` in groups of at most ``batch`` tiles of the same size, in order.
    A group is one call of the upscaler, and its indices are its feature-cache key."""
    by_size: dict[tuple[int, int], list[int]] = {}
    for k, t in enumerate(tiles):
        by_size.setdefault((t.y1 - t.y0, t.x1 - t.x0), []).append(k)
    return [tuple(ks[i : i + batch]) for ks in by_size.values() for i in range(0, len(ks), batch)]


def auto_tile_batch(tiles: Sequence[Tile], bytes_per_pixel: int, budget_bytes: int, device: torch.device) -> int:
    """Tiles per call: on a GPU as many of the largest as fit the budget together (a larger
    batch keeps it busy); on the CPU one, which keeps the peak memory of one tile."""
    if device.type == "cpu" or len(tiles) == 1:
        return 1
    largest = max((t.y1 - t.y0) * (t.x1 - t.x0) for t in tiles)
    return max(1, min(len(tiles), budget_bytes // (largest * bytes_per_pixel)))


def upscale_tiles(
    upscaler: Upscaler,
    x: torch.Tensor,
    tiles: Sequence[Tile],
    skip: int,
    inputs_only: bool = False,
    batch: int = 1,
    frame_indices: Sequence[int] | None = None,
) -> torch.Tensor:
    """One window (1, N, 3, H, W) through the upscaler, tile by tile (``batch`` equal tiles per
    call) -> (outputs, 3, sH, sW) on the upscaler's device: the outputs from ``skip`` on (only
    the even positions with ``inputs_only``). ``frame_indices`` name the window's frames for
    the feature caches."""
    if len(tiles) == 1:
        return upscaler(x, skip, (0,), inputs_only, frame_indices)[0]
    s = upscaler.descriptor.scale
    _, n, c, h, w = x.shape
    out = None
    for group in tile_batches(tiles, batch):
        crops = torch.cat([x[..., tiles[k].y0 : tiles[k].y1, tiles[k].x0 : tiles[k].x1] for k in group])
        ys = upscaler(crops, skip, group, inputs_only, frame_indices)
        if out is None:
            out = torch.empty(ys.shape[1], c, s * h, s * w, dtype=ys.dtype, device=ys.device)
        for k, y in zip(group, ys):
            t = tiles[k]
            oy, ox = s * (t.core_y0 - t.y0), s * (t.core_x0 - t.x0)
            hh, ww = s * (t.core_y1 - t.core_y0), s * (t.core_x1 - t.core_x0)
            out[..., s * t.core_y0 : s * t.core_y1, s * t.core_x0 : s * t.core_x1] = y[..., oy : oy + hh, ox : ox + ww]
    return out
