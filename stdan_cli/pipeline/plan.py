"""Planning an upscale: everything decided before the first frame goes through the model.

:func:`plan_upscale` checks the options, the output and the input, and fixes the encoding,
the tiles and the output's timing in an :class:`UpscalePlan`; :func:`stdan_cli.pipeline.run.run_plan`
carries it out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import torch

from stdan_cli.errors import OptionError
from stdan_cli.model import ModelDescriptor
from stdan_cli.pipeline.options import Mode, UpscaleOptions
from stdan_cli.pipeline.output import check_output, container_format
from stdan_cli.pipeline.outsize import check_outscale, needs_even_size, output_size
from stdan_cli.pipeline.tiles import Tile, auto_tile, auto_tile_batch, plan_tiles
from stdan_cli.upscalers import memory_budget
from stdan_cli.video.colour import ColourInfo, is_rgb_format
from stdan_cli.video.decode import VideoInfo, VideoReader
from stdan_cli.video.encode import ResolvedEncoding, output_colour, resolve_encoding


@dataclass(frozen=True)
class UpscalePlan:
    input: Path
    output: Path
    options: UpscaleOptions
    info: VideoInfo  # the input as probed (rotation read from its first frame)
    container: str  # FFmpeg muxer of the output
    encoding: ResolvedEncoding
    colour: ColourInfo  # tags the output gets
    scale: int  # the model's
    tiles: tuple[Tile, ...]
    tile_batch: int  # equal tiles per upscaler call
    tile_overlap: int  # input pixels
    size_multiple: int  # tile origins and sizes stay on the model's grid
    picture_size: tuple[int, int]  # (width, height) of the model's frames after --outscale

    @property
    def size_out(self) -> tuple[int, int]:
        """The encoded frame: the picture, or two side by side with --compare."""
        width, height = self.picture_size
        return (2 * width if self.options.compare else width), height

    @property
    def mode(self) -> Mode:
        return self.options.mode_row

    @property
    def time_base(self) -> Fraction:
        return self.mode.time_base(self.info.time_base, self.info.rate)

    @property
    def rate_out(self) -> Fraction:
        return self.mode.rate(self.info.rate)

    @property
    def expected_frames(self) -> int | None:
        """Output frames, when the container tells the input's frame count."""
        return self.mode.count(self.info.frame_count) if self.info.frame_count else None


def validate(input_path: str | os.PathLike, output_path: str | os.PathLike, options: UpscaleOptions) -> None:
    """Raise the error a user would otherwise meet later: bad options, output, input, codec."""
    options.check()
    check_output(Path(output_path), options.overwrite)
    fmt = container_format(Path(output_path))
    with VideoReader(input_path) as reader:
        resolve_encoding(options.encoding, reader.info.bit_depth, fmt)


def plan_upscale(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    descriptor: ModelDescriptor,
    options: UpscaleOptions,
    device: torch.device = torch.device("cpu"),
) -> UpscalePlan:
    """Check everything and fix what the run will do, for an upscaler described by ``descriptor``
    running on ``device`` (whose free memory sizes the tiles unless ``--memory-budget`` does)."""
    src, dst = Path(input_path), Path(output_path)
    options.check()
    check_outscale(options.outscale, descriptor.scale)
    if options.compare and descriptor.architecture == "bicubic":
        raise OptionError("--compare puts the model beside bicubic; with --model bicubic both halves are the same")
    check_output(dst, options.overwrite)
    fmt = container_format(dst)
    with VideoReader(src) as reader:
        reader.peek_rotation()
        info = reader.info
    encoding = resolve_encoding(options.encoding, info.bit_depth, fmt)
    overlap = options.tile_overlap if options.tile_overlap is not None else descriptor.tile_overlap
    multiple = max(1, descriptor.size_multiple)
    budget = memory_budget(device, options.memory_budget)
    tile = options.tile or auto_tile(info.height, info.width, descriptor.bytes_per_pixel, budget, overlap, multiple)
    tiles = tuple(plan_tiles(info.height, info.width, tile, overlap, multiple))
    return UpscalePlan(
        input=src,
        output=dst,
        options=options,
        info=info,
        container=fmt,
        encoding=encoding,
        colour=output_colour(info.colour, info.height, info.pix_fmt, is_rgb_format(info.pix_fmt)),
        scale=descriptor.scale,
        tiles=tiles,
        tile_batch=auto_tile_batch(tiles, descriptor.bytes_per_pixel, budget, device),
        tile_overlap=overlap,
        size_multiple=multiple,
        picture_size=output_size(info.width, info.height, options.outscale, needs_even_size(encoding.pix_fmt)),
    )
