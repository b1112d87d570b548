"""Decoding any video FFmpeg reads into RGB float frames with clean timestamps.

Frames are converted with the input's own matrix and range (BT.601/709/2020, limited/full);
inputs deeper than 8 bits are converted through 16-bit RGB so their precision is kept.
Missing or non-monotonic timestamps are repaired and a truncated end stops decoding cleanly;
both are reported in ``warnings``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np
import torch

from stdan_cli.errors import InputError
from stdan_cli.video.colour import ColourInfo, is_rgb_format

DEFAULT_RATE = Fraction(25)


@dataclass
class VideoInfo:
    path: Path
    width: int
    height: int
    pix_fmt: str
    bit_depth: int
    rate: Fraction  # nominal frames per second
    time_base: Fraction  # unit of Frame.pts
    frame_count: int | None  # from the container; may be missing or approximate
    colour: ColourInfo  # as tagged (see ColourInfo.resolved for what decoding assumed)
    rotation: int  # display rotation in degrees (counter-clockwise), 0 if none
    container_format: str

    @property
    def is_image(self) -> bool:
        return self.container_format.endswith("_pipe") or self.container_format == "image2"


@dataclass
class Frame:
    rgb: torch.Tensor  # (3, H, W) float32 in [0, 1]
    pts: int  # in VideoInfo.time_base, strictly increasing
    duration: int  # in VideoInfo.time_base


def _open(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise InputError(f"input {path} does not exist")
    if path.is_dir():
        raise InputError(f"input {path} is a directory, not a video")
    if not os.access(path, os.R_OK):
        raise InputError(f"input {path} is not readable")
    try:
        return av.open(str(path), mode="r")
    except av.error.FFmpegError as exc:
        raise InputError(f"input {path} is not a media file FFmpeg can read ({exc.strerror or exc})") from None


class VideoReader:
    """Streams the first video stream of a file as :class:`Frame` objects."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.container = _open(self.path)
        if not self.container.streams.video:
            self.container.close()
            raise InputError(f"input {self.path} has no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.warnings: list[str] = []
        ctx = self.stream.codec_context
        fmt = ctx.format
        if fmt is None or not ctx.width or not ctx.height:
            self.container.close()
            raise InputError(f"input {self.path}: its video stream has no decodable frames")
        rate = self.stream.average_rate or self.stream.guessed_rate or self.stream.base_rate or DEFAULT_RATE
        self.info = VideoInfo(
            path=self.path,
            width=ctx.width,
            height=ctx.height,
            pix_fmt=fmt.name,
            bit_depth=max(c.bits for c in fmt.components),
            rate=Fraction(rate),
            time_base=Fraction(self.stream.time_base or Fraction(1, 1000)),
            frame_count=self.stream.frames or self._estimate_count(Fraction(rate)),
            colour=ColourInfo.of(ctx),
            rotation=0,
            container_format=self.container.format.name,
        )
        self._first: av.VideoFrame | None = None

    def _estimate_count(self, rate: Fraction) -> int | None:
        if self.stream.duration and self.stream.time_base:
            return max(1, round(self.stream.duration * self.stream.time_base * rate))
        if self.container.duration:
            return max(1, round(self.container.duration / 1_000_000 * rate))
        return None

    def _decoded(self) -> Iterator[av.VideoFrame]:
        """Raw decoded frames; a corrupt packet is skipped, a read error ends the stream."""
        skipped = 0
        try:
            for packet in self.container.demux(self.stream):
                try:
                    yield from packet.decode()
                except av.error.FFmpegError:
                    skipped += 1
        except av.error.FFmpegError as exc:
            self.warnings.append(f"input ends early (truncated or damaged: {exc.strerror or exc}); kept what decoded")
        if skipped:
            self.warnings.append(f"skipped {skipped} damaged packet(s) of the input")

    def peek_rotation(self) -> int:
        """Read the first frame to learn the display rotation (kept for :meth:`frames`)."""
        if self._first is None:
            self._iter = self._decoded()
            self._first = next(self._iter, None)
            if self._first is None:
                raise InputError(f"input {self.path}: no video frame could be decoded")
            self.info.rotation = int(round(self._first.rotation or 0)) % 360
        return self.info.rotation

    def frames(self) -> Iterator[Frame]:
        self.peek_rotation()
        step = max(1, round(1 / (self.info.rate * self.info.time_base)))
        last_pts: int | None = None
        repaired = 0
        raw = self._first
        frames = self._iter
        while raw is not None:
            pts = raw.pts
            if pts is None or (last_pts is not None and pts <= last_pts):
                pts = 0 if last_pts is None else last_pts + step
                repaired += 1
            last_pts = pts
            duration = raw.duration if raw.duration and raw.duration > 0 else step
            yield Frame(rgb=to_rgb_tensor(raw), pts=pts, duration=duration)
            raw = next(frames, None)
        if repaired:
            self.warnings.append(f"repaired {repaired} missing or non-monotonic timestamp(s) of the input")

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def to_rgb_tensor(frame: av.VideoFrame) -> torch.Tensor:
    """A decoded frame -> (3, H, W) float32 RGB in [0, 1], with the frame's own matrix and range."""
    fmt = frame.format
    deep = max(c.bits for c in fmt.components) > 8
    target = "rgb48le" if deep else "rgb24"
    if fmt.is_rgb or is_rgb_format(fmt.name):
        rgb = frame.reformat(format=target)
    else:
        colour = ColourInfo.of(frame)
        rgb = frame.reformat(
            format=target,
            src_colorspace=colour.sws_matrix(frame.height),
            src_color_range=colour.sws_range(fmt.name),
            dst_color_range="JPEG",
        )
    arr = rgb.to_ndarray()
    scale = 65535.0 if deep else 255.0
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32) / scale).permute(2, 0, 1).contiguous()
