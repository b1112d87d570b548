"""``stdan upscale`` as a Python API: stream a video through the model and encode it.

decode (PyAV) -> temporal windows -> spatial tiles -> upscaler -> encode (PyAV), never holding
more than one window of frames. The output is written to a temporary file beside the target
and renamed only when complete, so no run leaves a half-written file behind.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable

import torch

from stdan_cli.background import SerialWorker, prefetch
from stdan_cli.errors import OutputError
from stdan_cli.model import output_positions
from stdan_cli.runtime import Upscaler
from stdan_cli.schedule import WindowScheduler, auto_tile, check_window, plan_tiles
from stdan_cli.video.colour import is_rgb_format
from stdan_cli.video.decode import Frame, VideoReader
from stdan_cli.video.encode import EncodeSettings, VideoWriter, output_colour, resolve_encoding

MODES = ("spacetime", "space", "slowmo")


@dataclass(frozen=True)
class UpscaleOptions:
    mode: str = "spacetime"  # spacetime: 4x size, 2x rate; space: 4x size; slowmo: all frames at the input rate
    window: int = 4
    stride: int = 3
    tile: int | None = None  # core tile size in input pixels; None: automatic from memory_budget
    tile_overlap: int | None = None  # None: the model's advice
    memory_budget: float = 4.0  # GiB for one window when choosing tiles automatically
    encoding: EncodeSettings = field(default_factory=EncodeSettings)
    overwrite: bool = False


@dataclass
class UpscaleSummary:
    input: Path
    output: Path
    frames_in: int
    frames_out: int
    size_in: tuple[int, int]
    size_out: tuple[int, int]
    rate_out: Fraction
    seconds: float
    tiles: int
    warnings: list[str]
    notices: list[str]


ProgressFn = Callable[[int, "int | None"], None]  # (output frames done, expected total)


def _temp_path(output: Path) -> Path:
    return output.with_name(f".{output.stem}.stdan-partial{output.suffix}")


def check_output(output: Path, overwrite: bool) -> None:
    if output.exists() and not overwrite:
        raise OutputError(f"output {output} already exists; pass -y/--overwrite to replace it")
    if output.is_dir():
        raise OutputError(f"output {output} is a directory")
    parent = output.parent if str(output.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"cannot write {output}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"cannot write {output}: folder {parent} is not writable")


_CONTAINERS = {"mp4": "mp4", "m4v": "mp4", "mov": "mov", "mkv": "matroska", "webm": "webm", "avi": "avi", "nut": "nut"}


def _container_format(output: Path) -> str:
    ext = output.suffix.lower().lstrip(".")
    if ext not in _CONTAINERS:
        raise OutputError(f"cannot tell the container from '{output.name}'; use .{', .'.join(_CONTAINERS)}")
    return _CONTAINERS[ext]


def validate(input_path: str | os.PathLike, output_path: str | os.PathLike, options: UpscaleOptions) -> None:
    """Raise the error a user would otherwise meet later: bad options, output, input, codec."""
    if options.mode not in MODES:
        raise OutputError(f"unknown mode '{options.mode}'; use one of {', '.join(MODES)}")
    try:
        check_window(options.window, options.stride)
    except ValueError as exc:
        raise OutputError(str(exc)) from None
    if options.tile is not None and options.tile < 1:
        raise OutputError("--tile must be a positive number of pixels")
    if options.tile_overlap is not None and options.tile_overlap < 0:
        raise OutputError("--tile-overlap cannot be negative")
    check_output(Path(output_path), options.overwrite)
    fmt = _container_format(Path(output_path))
    with VideoReader(input_path) as reader:
        resolve_encoding(options.encoding, reader.info.bit_depth, fmt)


def upscale_video(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    upscaler: Upscaler,
    options: UpscaleOptions = UpscaleOptions(),
    progress: ProgressFn | None = None,
) -> UpscaleSummary:
    started = time.perf_counter()
    src, dst = Path(input_path), Path(output_path)
    validate(src, dst, options)
    fmt = _container_format(dst)

    with VideoReader(src) as reader:
        info = reader.info
        rotation = reader.peek_rotation()
        encoding = resolve_encoding(options.encoding, info.bit_depth, fmt)
        desc = upscaler.descriptor
        s = desc.scale
        overlap = options.tile_overlap if options.tile_overlap is not None else desc.tile_overlap
        tile = options.tile or auto_tile(
            info.height, info.width, desc.bytes_per_pixel, int(options.memory_budget * 2**30), overlap, desc.size_multiple
        )
        tiles = plan_tiles(info.height, info.width, tile, overlap, max(1, desc.size_multiple))

        # Timing: originals keep their pts, new frames take the midpoints, in half the input time base.
        if options.mode == "slowmo":
            time_base, rate_out = 1 / info.rate, info.rate
        elif options.mode == "space":
            time_base, rate_out = info.time_base, info.rate
        else:
            time_base, rate_out = info.time_base / 2, info.rate * 2
        colour = output_colour(info.colour, info.height, info.pix_fmt, is_rgb_format(info.pix_fmt))
        expected = None
        if info.frame_count:
            expected = {"spacetime": 2 * info.frame_count - 1, "space": info.frame_count, "slowmo": 2 * info.frame_count - 1}[options.mode]

        temp = _temp_path(dst)
        try:
            writer = VideoWriter(
                temp, s * info.width, s * info.height, rate_out, time_base, encoding, colour, rotation,
                copy_from=src, keep_audio=options.mode != "slowmo", container_format=fmt,
            )
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        encoder = SerialWorker()  # encoding and muxing overlap with the model
        done = frames_in = 0
        pending: tuple[torch.Tensor, int] | None = None  # written once the next frame (or the end) is known
        try:
            sched: WindowScheduler[Frame] = WindowScheduler(options.window, options.stride)
            recent: dict[int, Frame] = {}  # the current window's input frames, for timestamps
            # --mode space keeps only the input times; their in-between frames are not computed.
            space = options.mode == "space"

            def run(windows) -> None:
                nonlocal done, pending
                for win, frames in windows:
                    recent.clear()
                    recent.update(zip(win.inputs, frames))
                    outputs = _upscale_tiles(upscaler, frames, tiles, s, win.skip, inputs_only=space)
                    positions = range(win.first_output, win.first_output + win.emit)
                    for j, position in enumerate(p for p in positions if not (space and p % 2)):
                        if pending is not None:
                            encoder.submit(writer.write, *pending)
                        pending = (outputs[j], _pts(position, recent, options.mode))
                        done += 1
                        if progress:
                            progress(done, expected)

            for frame in prefetch(reader.frames()):  # decoding overlaps with the model too
                frames_in += 1
                run(sched.push(frame))
            run(sched.finish())
            if pending is not None:
                # The last frame is shown until the input's end, so both last equally long.
                last = recent[max(recent)]
                hold = {"spacetime": 2 * last.duration, "space": last.duration, "slowmo": 1}[options.mode]
                encoder.submit(writer.write, *pending, hold=hold)
            encoder.finish()
            writer.close()
        except BaseException:
            encoder.cancel()
            writer.abort()
            temp.unlink(missing_ok=True)
            raise
        if done == 0:
            temp.unlink(missing_ok=True)
            raise OutputError(f"no frame of {src} could be decoded; nothing was written")
        os.replace(temp, dst)
        return UpscaleSummary(
            input=src, output=dst, frames_in=frames_in, frames_out=done,
            size_in=(info.width, info.height), size_out=(s * info.width, s * info.height),
            rate_out=rate_out, seconds=time.perf_counter() - started, tiles=len(tiles),
            warnings=list(reader.warnings), notices=list(writer.notices),
        )


def _upscale_tiles(
    upscaler: Upscaler, frames: list[Frame], tiles, scale: int, skip: int, inputs_only: bool = False
) -> torch.Tensor:
    """One window through the upscaler, tile by tile -> (outputs, 3, sH, sW): the outputs from
    ``skip`` on (only the even positions with ``inputs_only``)."""
    x = torch.stack([f.rgb for f in frames]).unsqueeze(0)  # (1, N, 3, H, W)
    if len(tiles) == 1:
        return upscaler(x, skip_outputs=skip, stream=0, inputs_only=inputs_only)[0]
    _, n, c, h, w = x.shape
    out = torch.empty(len(output_positions(n, skip, inputs_only)), c, scale * h, scale * w)
    for k, t in enumerate(tiles):
        y = upscaler(x[..., t.y0 : t.y1, t.x0 : t.x1], skip_outputs=skip, stream=k, inputs_only=inputs_only)[0]
        oy, ox = scale * (t.core_y0 - t.y0), scale * (t.core_x0 - t.x0)
        hh, ww = scale * (t.core_y1 - t.core_y0), scale * (t.core_x1 - t.core_x0)
        out[..., scale * t.core_y0 : scale * t.core_y1, scale * t.core_x0 : scale * t.core_x1] = y[..., oy : oy + hh, ox : ox + ww]
    return out


def _pts(position: int, frames: dict[int, Frame], mode: str) -> int:
    """pts of output ``position`` (in half frames) in the output time base: originals keep
    their time, in-between frames take the midpoint; slow motion counts frames."""
    k = position // 2
    if mode == "slowmo":
        return position
    if mode == "space":
        return frames[k].pts
    if position % 2 == 0:
        return 2 * frames[k].pts
    return frames[k].pts + frames[k + 1].pts
