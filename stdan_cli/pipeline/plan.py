"""Planning an upscale: everything decided before the first frame goes through the model.

:func:`plan_upscale` checks the options, the output and the input, and fixes the encoding,
the tiles and the output's timing in an :class:`UpscalePlan`; :func:`stdan_cli.jobs.run_job`
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
from stdan_cli.pipeline.options import Mode, UpscaleOptions, check_outscale
from stdan_cli.pipeline.output import check_output, container_format
from stdan_cli.pipeline.outsize import frame_size, picture_size
from stdan_cli.pipeline.tiles import Tile, auto_tile, auto_tile_batch, plan_tiles
from stdan_cli.upscalers import memory_budget
from stdan_cli.video.colour import ColourInfo, is_rgb_format
from stdan_cli.video.decode import VideoInfo, VideoReader
from stdan_cli.video.encode import output_colour
from stdan_cli.video.encoders import Container, ResolvedEncoding, resolve_encoding


@dataclass(frozen=True)
class UpscalePlan:
    input: str  # a path, an image-sequence pattern or a URL, as FFmpeg opens it
    output: Path
    options: UpscaleOptions
    info: VideoInfo  # the input as probed (rotation, interlacing, HDR metadata read from its first frame)
    container: Container  # of the output
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
        return frame_size(self.picture_size, self.options.compare)

    @property
    def mode(self) -> Mode:
        return self.options.mode_row

    @property
    def time_base(self) -> Fraction:
        return self.mode.time_base(self.info.time_base, self.info.rate)

    @property
    def rate_out(self) -> Fraction:
        return self.mode.rate(self.info.rate)


def _probe(input_path: str, output_path: Path, options: UpscaleOptions, scale: int) -> tuple[VideoInfo, Container, ResolvedEncoding]:
    """Options, output, input and encoder checked: what the run needs to know of them."""
    options.check()
    check_outscale(options.outscale, scale)
    check_output(output_path, options.overwrite, input_path)
    container = container_format(output_path)
    with VideoReader(input_path, options.deinterlace, options.video_filter) as reader:
        info = reader.peek()

    def size(pix_fmt: str) -> tuple[int, int]:  # the encoded frame, once the pixel format is chosen
        return frame_size(picture_size(info.width, info.height, options.outscale, pix_fmt), options.compare)

    encoding = resolve_encoding(options.encoding, info.traits(), container, size, options.mode_row.rate(info.rate))
    return info, container, encoding


def validate(input_path: str | os.PathLike, output_path: str | os.PathLike, options: UpscaleOptions) -> None:
    """Raise the error a user would otherwise meet later: bad options, output, input, codec
    (the encoder is opened with the run's settings)."""
    _probe(os.fspath(input_path), Path(output_path), options, 4)  # before a model exists: every upscaler is x4


def plan_upscale(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    descriptor: ModelDescriptor,
    options: UpscaleOptions,
    device: torch.device = torch.device("cpu"),
    budget_bytes: int | None = None,
) -> UpscalePlan:
    """Check everything and fix what the run will do (for an upscaler described by ``descriptor``
    on ``device``). ``budget_bytes``: the memory one window may use when the device is not this
    machine's (Ray workers report theirs); by default ``--memory-budget`` or the device's free
    memory, asked here."""
    if options.compare and not descriptor.can_compare:
        raise OptionError("--compare puts the model beside bicubic; with --model bicubic both halves are the same")
    src, dst = os.fspath(input_path), Path(output_path)
    info, container, encoding = _probe(src, dst, options, descriptor.scale)
    overlap = options.tile_overlap if options.tile_overlap is not None else descriptor.tile_overlap
    multiple = max(1, descriptor.size_multiple)
    if budget_bytes is None or options.memory_budget is not None:
        budget_bytes = memory_budget(device, options.memory_budget)
    tile = options.tile or auto_tile(info.height, info.width, descriptor.bytes_per_pixel, budget_bytes, overlap, multiple)
    tiles = tuple(plan_tiles(info.height, info.width, tile, overlap, multiple))
    return UpscalePlan(
        input=src,
        output=dst,
        options=options,
        info=info,
        container=container,
        encoding=encoding,
        colour=output_colour(info.colour, info.height, info.pix_fmt, is_rgb_format(info.pix_fmt)),
        scale=descriptor.scale,
        tiles=tiles,
        tile_batch=auto_tile_batch(tiles, descriptor.bytes_per_pixel, budget_bytes, device),
        tile_overlap=overlap,
        size_multiple=multiple,
        picture_size=picture_size(info.width, info.height, options.outscale, encoding.pix_fmt),
    )
