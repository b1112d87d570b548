"""Running an upscale plan: decode (PyAV) -> temporal windows -> spatial tiles -> upscaler ->
encode (PyAV), never holding more than one window of frames.

Decoding runs ahead of the model and encoding behind it, each in a background thread. The
output is written to a temporary file beside the target and renamed only when complete.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Sequence

import torch

from stdan_cli.errors import InputError, is_out_of_memory
from stdan_cli.pipeline.background import SerialWorker, prefetch
from stdan_cli.pipeline.options import UpscaleOptions
from stdan_cli.pipeline.output import temp_path
from stdan_cli.pipeline.outsize import resize_frames, side_by_side
from stdan_cli.pipeline.plan import UpscalePlan, plan_upscale
from stdan_cli.pipeline.tiles import plan_tiles, upscale_tiles
from stdan_cli.pipeline.windows import Window, WindowScheduler
from stdan_cli.upscalers import BICUBIC_DESCRIPTOR, BicubicUpscaler, Upscaler
from stdan_cli.upscalers.transfer import quantize, to_host
from stdan_cli.video.decode import Frame, VideoReader
from stdan_cli.video.encode import VideoWriter


@dataclass
class UpscaleSummary:
    input: str
    output: Path
    frames_in: int
    frames_out: int
    size_in: tuple[int, int]
    size_out: tuple[int, int]
    rate_out: Fraction
    seconds: float
    tiles: int
    outscale: float
    compare: bool
    warnings: list[str]
    notices: list[str]


ProgressFn = Callable[[int, "int | None"], None]  # (output frames done, expected total)


class OutputTimeline:
    """Gives each output frame its timestamp (by the plan's mode) and hands it to ``write``.

    A frame is written once the next one exists, so that the last frame of the video can be
    written with a duration that makes the output last as long as the input.
    """

    def __init__(self, plan: UpscalePlan, write: Callable[..., None]):
        self.mode = plan.mode
        self.write = write
        self.count = 0
        self._pending: tuple[torch.Tensor, int] | None = None
        self._inputs: dict[int, Frame] = {}  # the current window's input frames, for timestamps

    def add_window(self, window: Window, frames: list[Frame], outputs: torch.Tensor) -> int:
        """Queue the outputs of one window (the ones it emits, in order); returns how many."""
        self._inputs = dict(zip(window.inputs, frames))
        positions = range(window.first_output, window.first_output + window.emit)
        kept = [p for p in positions if not (self.mode.inputs_only and p % 2)]
        for output, position in zip(outputs, kept):
            if self._pending is not None:
                self.write(*self._pending)
            self._pending = (output, self.mode.pts(position, lambda k: self._inputs[k].pts))
            self.count += 1
        return len(kept)

    def finish(self) -> None:
        """Write the last frame, shown until the input's last frame ends."""
        if self._pending is not None:
            last = self._inputs[max(self._inputs)]
            self.write(*self._pending, hold=self.mode.hold(last.duration))
            self._pending = None


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


def run_plan(plan: UpscalePlan, upscaler: Upscaler, progress: ProgressFn | None = None) -> UpscaleSummary:
    """Carry out ``plan`` with ``upscaler`` and rename the finished file to ``plan.output``."""
    started = time.perf_counter()
    options, mode, info = plan.options, plan.mode, plan.info
    temp = temp_path(plan.output)
    with VideoReader(plan.input, options.deinterlace) as reader:
        width, height = plan.size_out
        try:
            writer = VideoWriter(
                temp, width, height, plan.rate_out, plan.time_base, plan.encoding, plan.colour, plan.container,
                rotation=info.rotation, sar=info.sar, copy_from=plan.input, keep_audio=mode.keeps_audio,
                time_scale=mode.duration_scale,
            )
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        encoder = SerialWorker()  # encoding and muxing overlap with the model
        timeline = OutputTimeline(plan, lambda *frame, **kw: encoder.submit(writer.write, *frame, **kw))
        window_upscaler = WindowUpscaler(plan, upscaler)
        frames_in = 0
        try:
            scheduler: WindowScheduler[Frame] = WindowScheduler(options.window, options.stride)

            def upscale(windows: list[tuple[Window, list[Frame]]]) -> None:
                for window, frames in windows:
                    timeline.add_window(window, frames, window_upscaler(frames, window.skip, window.inputs))
                    if progress:
                        progress(timeline.count, plan.expected_frames)

            for frame in prefetch(reader.frames()):  # decoding overlaps with the model too
                frames_in += 1
                upscale(scheduler.push(frame))
            upscale(scheduler.finish())
            timeline.finish()
            encoder.finish()
            writer.close()
        except BaseException:
            encoder.cancel()
            writer.abort()
            temp.unlink(missing_ok=True)
            raise
        if timeline.count == 0:
            temp.unlink(missing_ok=True)
            raise InputError(f"no frame of {plan.input} could be decoded; nothing was written")
        os.replace(temp, plan.output)
        return UpscaleSummary(
            input=plan.input, output=plan.output, frames_in=frames_in, frames_out=timeline.count,
            size_in=(info.width, info.height), size_out=plan.size_out, rate_out=plan.rate_out,
            seconds=time.perf_counter() - started, tiles=len(plan.tiles),
            outscale=options.outscale, compare=options.compare,
            warnings=list(reader.warnings),
            notices=list(writer.notices) + window_upscaler.notices + list(upscaler.notices),
        )


def upscale_video(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    upscaler: Upscaler,
    options: UpscaleOptions = UpscaleOptions(),
    progress: ProgressFn | None = None,
) -> UpscaleSummary:
    """``stdan upscale`` as a function: plan, then run."""
    plan = plan_upscale(input_path, output_path, upscaler.descriptor, options, upscaler.device)
    return run_plan(plan, upscaler, progress)
