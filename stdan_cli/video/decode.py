"""Decoding any video FFmpeg reads into RGB float frames with clean timestamps.

Frames are converted with the input's own matrix and range (BT.601/709/2020, limited/full);
inputs deeper than 8 bits are converted through 16-bit RGB so their precision is kept.
Interlaced input is deinterlaced first (:mod:`stdan_cli.video.deinterlace`). Every frame
FFmpeg can decode is used: corrupt packets are skipped and the decoder is flushed after a
read error. Repaired timestamps, an early end, skipped packets, deinterlacing and dropped
transparency are reported in ``warnings``.

:meth:`VideoReader.frames_from` starts at a given frame instead: it seeks to the keyframe at or
before it and decodes forward, and checks that it reached exactly that frame (or says why not).
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import av
import numpy as np
import torch

from stdan_cli.errors import InputError
from stdan_cli.video.colour import ColourInfo, HdrMetadata, bit_depth, is_rgb_format
from stdan_cli.video.deinterlace import Deinterlacer, is_interlaced, should_deinterlace
from stdan_cli.video.encoders import SourceTraits
from stdan_cli.video.sources import display, open_input
from stdan_cli.video.vf import VideoFilter

DEFAULT_RATE = Fraction(25)


@dataclass
class VideoInfo:
    source: str  # as the user wrote it: a path, an image-sequence pattern or a URL
    width: int
    height: int
    pix_fmt: str
    bit_depth: int
    rate: Fraction  # nominal frames per second
    time_base: Fraction  # unit of Frame.pts
    frame_count: int | None  # from the container; may be missing or approximate
    colour: ColourInfo  # as tagged (see ColourInfo.resolved for what decoding assumed)
    rotation: int  # display rotation in degrees (counter-clockwise), 0 if none
    sar: Fraction | None  # sample (pixel) aspect ratio, None when square or unknown
    has_alpha: bool
    interlaced: bool = False  # known after peek()
    hdr_metadata: HdrMetadata | None = None  # known after peek()

    def traits(self) -> SourceTraits:
        """What this input asks of the encoder (bits, HDR)."""
        return SourceTraits(self.bit_depth, self.colour.is_hdr, self.hdr_metadata)


class SeekMissed(Exception):
    """A seek cannot reach the frame asked for exactly (the message says why); decode from the start instead."""


@dataclass
class Frame:
    rgb: torch.Tensor  # (3, H, W) float32 in [0, 1]
    pts: int  # in VideoInfo.time_base, strictly increasing
    duration: int  # in VideoInfo.time_base


SAME_RATE = Fraction(1, 100)  # an average this close to the stream's frame rate is that rate, measured
# FFmpeg's AVFMT_NOTIMESTAMPS: a raw elementary stream (.h264, .hevc, .m2v) whose demuxer has no
# times of its own; its "average" rate is FFmpeg's default of 25, not a measurement.
NO_TIMESTAMPS = 0x80


def nominal_rate(average, guessed, base) -> Fraction:
    """The frame rate the output's timing is built on. The average (frames over duration) is
    measured from timestamps a container may round (FLV and Matroska keep milliseconds: 29.97 fps
    averages 989/33): when it lies within 1% of the stream's frame rate (FFmpeg's r_frame_rate,
    e.g. 30000/1001), that exact rate is taken; a rate further off (variable frame rate) stays
    the average."""
    average, guessed = (Fraction(r) if r else None for r in (average, guessed))
    if average and guessed and abs(average - guessed) <= guessed * SAME_RATE:
        return guessed
    return Fraction(average or guessed or base or DEFAULT_RATE)


class VideoReader:
    """Streams the first video stream of a file as :class:`Frame` objects.

    ``deinterlace``: auto (when the input is interlaced), on or off. ``video_filter``: an
    FFmpeg filter chain (``--vf``) run after deinterlacing; :meth:`peek` reports the size and
    rate of the frames it makes."""

    def __init__(self, source: str | os.PathLike, deinterlace: str = "auto", video_filter: str | None = None):
        self.source = display(source)
        self.deinterlace_mode = deinterlace
        self.video_filter = video_filter
        self.container = open_input(source)
        if not self.container.streams.video:
            self.container.close()
            raise InputError(f"input {self.source} has no video stream")
        self.stream = self.container.streams.video[0]
        # Slice threads only: with frame threads, a packet that fails to decode takes the frames
        # decoded in the same call with it (PyAV raises before returning them).
        self.stream.thread_type = "SLICE"
        self.warnings: list[str] = []
        ctx = self.stream.codec_context
        fmt = ctx.format
        if fmt is None or not ctx.width or not ctx.height:
            self.container.close()
            raise InputError(f"input {self.source}: its video stream has no decodable frames")
        measured = not self.container.format.flags & NO_TIMESTAMPS
        rate = nominal_rate(self.stream.average_rate if measured else None, self.stream.guessed_rate,
                            self.stream.base_rate)
        sar = self.stream.sample_aspect_ratio or ctx.sample_aspect_ratio
        self.info = VideoInfo(
            source=self.source,
            width=ctx.width,
            height=ctx.height,
            pix_fmt=fmt.name,
            bit_depth=bit_depth(fmt),
            rate=Fraction(rate),
            time_base=Fraction(self.stream.time_base or Fraction(1, 1000)),
            frame_count=self.stream.frames or self._estimate_count(Fraction(rate)),
            colour=ColourInfo.of(ctx),
            rotation=0,
            sar=Fraction(sar) if sar and Fraction(sar) != 1 else None,
            has_alpha=any(c.is_alpha for c in fmt.components),
        )
        self._first: av.VideoFrame | None = None
        self.deinterlacing = False
        self._ended_early = False
        self._decoded_count = 0  # frames the decoder gave, before deinterlacing and --vf
        self._seeked = False  # frames_from: the frames start later than the input's first
        self.repaired = 0  # timestamps repaired so far (missing or not increasing)

    def _estimate_count(self, rate: Fraction) -> int | None:
        if self.stream.duration and self.stream.time_base:
            return max(1, round(self.stream.duration * self.stream.time_base * rate))
        if self.container.duration:
            return max(1, round(self.container.duration / 1_000_000 * rate))
        return None

    def _decoded(self) -> Iterator[av.VideoFrame]:
        """Raw decoded frames (counted). A corrupt packet is skipped; a read
        error ends the input, and the decoder is flushed so the frames it holds are kept."""
        skipped = 0
        try:
            for packet in self.container.demux(self.stream):
                try:
                    for frame in packet.decode():
                        self._decoded_count += 1
                        yield frame
                except av.error.FFmpegError:
                    skipped += 1
        except av.error.FFmpegError as exc:
            try:
                for frame in self.stream.codec_context.decode(None):
                    self._decoded_count += 1
                    yield frame
            except av.error.FFmpegError:
                pass
            self._ended_early = True
            self.warnings.append(f"input ends early (truncated or damaged: {exc.strerror or exc}); kept every frame that decoded")
        if skipped:
            self.warnings.append(f"{skipped} damaged packet(s) of the input could not be decoded; the frames around them are kept")

    def peek(self) -> VideoInfo:
        """Read the first frame to learn what the stream header may not say: rotation,
        interlacing and HDR metadata (the frame is kept for :meth:`frames`)."""
        if self._first is None:
            self._raw = self._decoded()
            first_raw = next(self._raw, None)
            if first_raw is None:
                raise InputError(f"input {self.source}: no video frame could be decoded")
            self.info.rotation = int(round(first_raw.rotation or 0)) % 360
            self.info.interlaced = is_interlaced(self.stream, first_raw)
            self.info.hdr_metadata = HdrMetadata.of(first_raw)
            self.deinterlacing = should_deinterlace(self.deinterlace_mode, self.info.interlaced)
            if self.deinterlacing:
                self.warnings.append("input is interlaced: deinterlaced with bwdif (one frame per frame) before upscaling"
                                     if self.info.interlaced else "deinterlaced with bwdif (--deinterlace on)")
            elif self.info.interlaced:
                self.warnings.append("input is interlaced but --deinterlace off: combs will be magnified")
            if self.info.has_alpha:
                self.warnings.append(f"input has transparency ({self.info.pix_fmt}); it is dropped: the output is opaque")
            self._iter = self._frames_in_after(first_raw)
            self._first = next(self._iter, None)
            if self._first is None:
                raise InputError(f"input {self.source}: no video frame could be decoded"
                                 + (f" or --vf {self.video_filter} let none through" if self.video_filter else ""))
            if self.video_filter:
                self._describe_filtered()
        return self.info

    def _frames_in_after(self, first_raw: av.VideoFrame) -> Iterator[av.VideoFrame]:
        """The decoded frames from ``first_raw`` on, deinterlaced when asked, then through --vf."""

        def raw():
            yield first_raw
            yield from self._raw

        frames = raw()
        if self.deinterlacing:
            frames = _through(Deinterlacer(self.stream), frames)
        if self.video_filter:
            frames = _through(VideoFilter(self.stream, self.video_filter), frames)
        yield from frames

    def _describe_filtered(self) -> None:
        """The size, format and rate of what --vf makes (read from its first two frames)."""
        first = self._first
        second = next(self._iter, None)
        if second is not None:
            self._iter = itertools.chain([second], self._iter)
        info = self.info
        info.width, info.height, info.pix_fmt = first.width, first.height, first.format.name
        info.bit_depth = bit_depth(first.format)
        if second is not None and first.pts is not None and second.pts is not None and second.pts > first.pts:
            rate = 1 / ((second.pts - first.pts) * info.time_base)
            if abs(rate - info.rate) > info.rate / 100:  # the chain changed the rate (fps=, framestep=...)
                if info.frame_count:
                    info.frame_count = max(1, round(info.frame_count * rate / info.rate))
                info.rate = Fraction(rate).limit_denominator(1_001_000)

    def frames(self) -> Iterator[Frame]:
        self.peek()
        yield from self._timed(self._first, self._iter)

    def frames_from(self, pts: int) -> Iterator[Frame]:
        """The frames from the one whose timestamp is ``pts`` on (as :meth:`frames` gives them),
        reached by seeking to a keyframe at or before it and decoding forward. Raises
        :class:`SeekMissed`, before any frame is given, when that frame cannot be reached
        exactly: deinterlacing or --vf (their output depends on earlier frames), an input that
        cannot seek, a landing that is not a keyframe at or before ``pts``, timestamps that are
        missing or not increasing on the way (:meth:`frames` would have repaired them), or no
        frame at exactly ``pts``."""
        self.peek()  # rotation, interlacing and HDR metadata come from the input's first frame
        if self.deinterlacing:
            raise SeekMissed("deinterlacing (bwdif) makes each frame from its neighbours")
        if self.video_filter:
            raise SeekMissed(f"--vf {self.video_filter} may carry state from earlier frames")
        self._raw.close()
        first, rest = self._land(pts)
        self._seeked = True
        return self._timed(first, rest)

    def _land(self, pts: int) -> tuple[av.VideoFrame, Iterator[av.VideoFrame]]:
        """The raw frame at exactly ``pts`` and the decoder's frames after it. A keyframe is
        sought at or before ``pts``, then further back when the demuxer lands after it
        (MP4 indexes keyframes by decoding time, which B-frames put before their display time)."""
        second = 1 / self.info.time_base
        for back in (0, 1, 10, 60):
            try:
                self.container.seek(pts - round(back * second), backward=True, any_frame=False, stream=self.stream)
            except (av.error.FFmpegError, OSError, ValueError) as exc:
                raise SeekMissed(f"the input cannot seek ({exc})") from None
            raw = self._decoded()
            frame = next(raw, None)
            if frame is None:
                raise SeekMissed("no frame decoded after seeking")
            if frame.pts is None:
                raise SeekMissed("the decoded frames have no timestamps")
            if frame.pts > pts:
                raw.close()
                continue
            if not frame.key_frame or frame.is_corrupt:
                raise SeekMissed(f"the seek landed on a frame that is not a clean keyframe (pts {frame.pts})")
            last = frame.pts
            while frame.pts < pts:
                frame = next(raw, None)
                if frame is None or frame.pts is None or frame.pts <= last:
                    raise SeekMissed(f"the timestamps after the keyframe at {last} are missing or not increasing")
                if frame.is_corrupt:
                    raise SeekMissed(f"the frame at {frame.pts} decoded corrupt after the seek")
                last = frame.pts
            if frame.pts != pts:
                raise SeekMissed(f"no frame has the timestamp {pts} (the decoder went from {last} on)")
            return frame, raw
        raise SeekMissed(f"every keyframe the input's index gave lies after the timestamp {pts}")

    def _timed(self, raw: av.VideoFrame | None, frames: Iterator[av.VideoFrame]) -> Iterator[Frame]:
        """``raw`` and then ``frames`` as :class:`Frame` objects with clean timestamps (a missing or
        non-increasing one is repaired: the previous plus one frame); then the check that the
        input was not cut short (only when the frames began at the input's first)."""
        step = max(1, round(1 / (self.info.rate * self.info.time_base)))
        last_pts: int | None = None
        end: int | None = None  # where the last frame decoded ends
        while raw is not None:
            pts = raw.pts
            if pts is None or (last_pts is not None and pts <= last_pts):
                pts = 0 if last_pts is None else last_pts + step
                self.repaired += 1
            last_pts = pts
            duration = raw.duration if raw.duration and raw.duration > 0 else step
            yield Frame(rgb=to_rgb_tensor(raw), pts=pts, duration=duration)
            end = pts + duration
            raw = next(frames, None)
        if self.repaired:
            self.warnings.append(f"repaired {self.repaired} missing or non-monotonic timestamp(s) of the input")
        if not self._ended_early and not self._seeked:
            shortfall = self._shortfall(self._decoded_count, end)
            if shortfall:
                self.warnings.append(shortfall)

    def _shortfall(self, count: int, end: int | None) -> str | None:
        """What the container announces and did not decode (a file cut short: FFmpeg's demuxers
        stop quietly at the cut), from its frame count (MP4, MOV), against ``count`` frames
        decoded before any filter (--vf fps= changes how many come out), or else its video's
        duration (any container that states one: Matroska, WebM, AVI, image sequences...)."""
        if self.stream.frames:
            if count < self.stream.frames:
                return f"input ended early: {count} of the {self.stream.frames} frames its header announces decoded"
            return None
        announced = self._announced_duration()
        if announced is None or end is None:
            return None
        start = self.stream.start_time or 0
        decoded = float((end - start) * self.info.time_base)
        if announced - decoded > 1.5 / float(self.info.rate):  # more than a frame missing (a margin for rounding)
            expected = round(announced * float(self.info.rate))
            return (f"input ended early: {count} frames ({decoded:.2f} s) decoded, where its container announces "
                    f"{announced:.2f} s (about {expected} frames); truncated or damaged? kept every frame that decoded")
        return None

    def _announced_duration(self) -> float | None:
        """Seconds the video stream should last, as the container states it: the stream's own
        duration, its DURATION tag (Matroska), or the file's when the video is its only stream."""
        if self.stream.duration and self.stream.time_base:
            return float(self.stream.duration * self.stream.time_base)
        tag = self.stream.metadata.get("DURATION") or self.stream.metadata.get("duration")
        if tag:
            try:
                hours, minutes, seconds = tag.split(":")
                return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
            except ValueError:
                pass
        if self.container.duration and len(self.container.streams) == 1:
            return self.container.duration / 1_000_000
        return None

    def close(self) -> None:
        self.container.close()


    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def to_rgb_tensor(frame: av.VideoFrame) -> torch.Tensor:
    """A decoded frame -> (3, H, W) float32 RGB in [0, 1], with the frame's own matrix and range."""
    fmt = frame.format
    deep = bit_depth(fmt) > 8
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


def _through(node, frames: Iterator[av.VideoFrame]) -> Iterator[av.VideoFrame]:
    """``frames`` through a filter (a :class:`Deinterlacer` or :class:`VideoFilter`), flushed at the end."""
    for frame in frames:
        yield from node.push(frame)
    yield from node.push(None)
