"""One window of input frames -> the output frames that are encoded.

The model runs through the plan's tiles (equal tiles batched on a GPU); its 4x frames are
resized to the output size (``--outscale``), set beside the bicubic baseline
(``--compare``) and rounded to 8/16-bit codes, all on the upscaler's device; only the
finished codes are copied back to the host.
"""

from __future__ import annotations

from typing import Sequence

import torch

from stdan_cli.errors import is_out_of_memory
from stdan_cli.pipeline.outsize import resize_frames, side_by_side
from stdan_cli.pipeline.plan import UpscalePlan
from stdan_cli.pipeline.tiles import plan_tiles, upscale_tiles
from stdan_cli.upscalers import BICUBIC_DESCRIPTOR, BicubicUpscaler, Upscaler
from stdan_cli.upscalers.transfer import quantize, to_host
from stdan_cli.video.decode import Frame

MIN_TILE = 16  # input pixels: the smallest tile core tried after running out of memory


class WindowUpscaler:
    """One window of input frames -> its output frames as they are encoded: the model through
    the plan's tiles, resized to the output size, beside the bicubic baseline with --compare.

    When the device runs out of memory, the tiles are halved and the window is tried again,
    down to :data:`MIN_TILE`; only then does the error reach the user.
    """

    def __init__(self, plan: UpscalePlan, upscaler: Upscaler):
        self.plan, self.upscaler = plan, upscaler
        self.baseline = BicubicUpscaler(BICUBIC_DESCRIPTOR, upscaler.device) if plan.options.compare else None
        self.tiles, self.batch = plan.tiles, plan.tile_batch
        self.notices: list[str] = []
        upscaler.reset()  # features cached by an earlier run belong to another video

    def __call__(self, frames: list[Frame], skip: int, indices: Sequence[int] | None = None) -> torch.Tensor:
        """(K, 3, H, W) RGB codes (uint8, or uint16 for deep output) on the host, of the outputs
        from ``skip`` on (input times only in --mode space); ``indices`` are the frames' numbers in
        the video, which let the model reuse a shared frame's features. Stitching, resizing and rounding
        happen on the upscaler's device; only the finished codes are copied back."""
        x = torch.stack([f.rgb for f in frames]).unsqueeze(0)  # (1, N, 3, H, W)
        out = resize_frames(self._tiled(self.upscaler, x, skip, indices), self.plan.picture_size)
        if self.baseline is not None:
            out = side_by_side(resize_frames(self._tiled(self.baseline, x, skip, indices), self.plan.picture_size), out)
        return to_host(quantize(out, self.plan.encoding.bit_depth))

    def start_chunk(self) -> None:
        """Forget cached features: a chunk is made from its own frames only."""
        self.upscaler.reset()

    def _tiled(self, upscaler: Upscaler, x: torch.Tensor, skip: int, indices: Sequence[int] | None) -> torch.Tensor:
        while True:
            try:
                return upscale_tiles(upscaler, x, self.tiles, skip, self.plan.mode.inputs_only, self.batch, indices)
            except (MemoryError, RuntimeError) as exc:
                if not is_out_of_memory(exc) or not self._use_less_memory():
                    raise

    def _use_less_memory(self) -> bool:
        """One tile per call, then tiles of half the core size; False when nothing is left to try."""
        plan = self.plan
        if self.batch > 1:
            self.notices.append(f"out of memory with {self.batch} tiles per call; continued with one")
            self.batch = 1
            return self._forget()
        core = max(max(t.core_y1 - t.core_y0, t.core_x1 - t.core_x0) for t in self.tiles)
        smaller = core // 2 // plan.size_multiple * plan.size_multiple
        if smaller < max(MIN_TILE, plan.size_multiple):
            return False
        self.tiles = tuple(plan_tiles(plan.info.height, plan.info.width, smaller, plan.tile_overlap, plan.size_multiple))
        self.notices.append(f"out of memory with {core} px tiles; continued with {smaller} px tiles")
        return self._forget()

    def _forget(self) -> bool:
        self.upscaler.reset()  # cached features belong to the old tile groups
        if self.upscaler.device.type == "cuda":
            torch.cuda.empty_cache()
        return True
