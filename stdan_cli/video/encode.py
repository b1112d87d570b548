"""Encoding the upscaled frames with PyAV, keeping what else the input carries.

- codec, pixel format, CRF and preset are validated before any work is done;
- RGB is converted with an explicit matrix and range, and the output is tagged with them
  (plus the input's primaries and transfer) so players show the colours the input had;
- the display rotation is kept;
- audio and subtitle streams are copied packet for packet (never re-encoded), interleaved
  with the video by time; a stream the container cannot hold is dropped with a notice.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np
import torch

from stdan_cli.errors import OutputError
from stdan_cli.video.colour import RANGE_FULL, ColourInfo

CODECS = ("libx264", "libx265", "libvpx-vp9", "libsvtav1", "ffv1", "prores")
# Per codec: default CRF (None: the codec has no CRF) and preset (None: no presets).
_DEFAULTS = {
    "libx264": (18, "medium"),
    "libx265": (20, "medium"),
    "libvpx-vp9": (24, None),
    "libsvtav1": (30, "8"),
    "ffv1": (None, None),
    "prores": (None, None),
}
_MATRIX_NAME = {1: "ITU709", 4: "FCC", 5: "ITU601", 6: "SMPTE170M", 7: "SMPTE240M", 9: "BT2020", 10: "BT2020"}


@dataclass(frozen=True)
class EncodeSettings:
    codec: str = "libx264"
    pix_fmt: str | None = None  # None: yuv420p, or a 10-bit format for 10-bit inputs when the codec has one
    crf: int | None = None  # None: the codec's default above
    preset: str | None = None


@dataclass(frozen=True)
class ResolvedEncoding:
    codec: str
    pix_fmt: str
    options: dict
    bit_depth: int
    notices: tuple[str, ...] = ()


def resolve_encoding(settings: EncodeSettings, input_bit_depth: int, container_format: str) -> ResolvedEncoding:
    """Check codec, pixel format and options against FFmpeg and the output container."""
    name = settings.codec
    try:
        codec = av.codec.Codec(name, "w")
    except (av.error.FFmpegError, ValueError):
        raise OutputError(f"unknown video codec '{name}'; use one of {', '.join(CODECS)}") from None
    if codec.type != "video":
        raise OutputError(f"'{name}' is not a video codec; use one of {', '.join(CODECS)}")
    formats = [f.name for f in codec.video_formats or []]
    probe = av.open(io.BytesIO(), "w", format=container_format)
    try:
        if codec.canonical_name not in probe.supported_codecs:
            raise OutputError(f"the {container_format} container cannot hold {name} video; pick another --codec or file extension")
    finally:
        probe.close()
    if settings.pix_fmt:
        if formats and settings.pix_fmt not in formats:
            raise OutputError(f"{name} cannot encode pixel format '{settings.pix_fmt}'; it takes {', '.join(formats)}")
        pix_fmt = settings.pix_fmt
    else:
        wanted = ["yuv420p10le", "yuv422p10le", "yuv420p16le"] if input_bit_depth > 8 else ["yuv420p"]
        wanted += ["yuv420p", "yuv422p10le", "yuv444p10le"]
        pix_fmt = next((f for f in wanted if not formats or f in formats), formats[0])
    depth = max(c.bits for c in av.VideoFormat(pix_fmt).components)
    default_crf, default_preset = _DEFAULTS.get(name, (None, None))
    options, notices = {}, []
    crf = settings.crf if settings.crf is not None else default_crf
    if crf is not None:
        if default_crf is None:
            notices.append(f"--crf is ignored: {name} has no CRF mode")
        else:
            options["crf"] = str(crf)
            if name == "libvpx-vp9":
                options["b:v"] = "0"  # constant quality
    preset = settings.preset or default_preset
    if preset is not None:
        if default_preset is None:
            notices.append(f"--preset is ignored: {name} has no presets")
        else:
            options["preset"] = preset
    return ResolvedEncoding(name, pix_fmt, options, depth, tuple(notices))


def output_colour(colour: ColourInfo, height: int, pix_fmt: str, is_rgb: bool) -> ColourInfo:
    """The tags the output gets: what decoding assumed for the matrix and range (explicit,
    since the 4x larger output would otherwise be guessed as HD), the input's primaries and
    transfer. RGB inputs (images) are encoded as BT.709 limited range, tagged sRGB."""
    if is_rgb:
        return ColourInfo(matrix=1, range=1, primaries=1, transfer=13)
    return colour.resolved(height, pix_fmt)


class StreamCopier:
    """Copies the audio and subtitle packets of the input into the output, unchanged,
    interleaved with the video by time (so memory does not grow with the video's length)."""

    def __init__(self, input_path: Path, output: av.container.OutputContainer, keep_audio: bool):
        self.notices: list[str] = []
        self.source = av.open(str(input_path))
        self.map: dict[int, av.stream.Stream] = {}
        for stream in self.source.streams:
            if stream.type not in ("audio", "subtitle"):
                continue
            label = f"{stream.type} stream #{stream.index} ({stream.codec_context.name})"
            if stream.type == "audio" and not keep_audio:
                self.notices.append(f"{label} dropped: slow motion changes the duration")
                continue
            if stream.codec_context.name not in output.supported_codecs:
                self.notices.append(f"{label} dropped: the {output.format.name} container cannot hold it")
                continue
            try:
                self.map[stream.index] = output.add_stream_from_template(stream)
            except (av.error.FFmpegError, ValueError) as exc:
                self.notices.append(f"{label} dropped: {exc}")
        self._packets: Iterator | None = None
        self._pending = None
        if self.map:
            self._packets = iter(self.source.demux([self.source.streams[i] for i in self.map]))

    def copy_until(self, seconds: float | None) -> None:
        """Mux copied packets whose time is before ``seconds`` (None: all remaining)."""
        while self._packets is not None:
            packet = self._pending or next(self._packets, None)
            self._pending = None
            if packet is None:
                self._packets = None
                break
            if packet.dts is None:
                continue  # flush packets carry no data
            if seconds is not None and packet.time_base and float(packet.dts * packet.time_base) > seconds:
                self._pending = packet
                break
            packet.stream = self.map[packet.stream.index]
            self._output_mux(packet)

    def attach(self, output: av.container.OutputContainer) -> None:
        self._output_mux = output.mux

    def close(self) -> None:
        self.source.close()


class VideoWriter:
    """Writes RGB frames as a video stream, plus copied streams, to ``path``."""

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        rate: Fraction,
        time_base: Fraction,
        encoding: ResolvedEncoding,
        colour: ColourInfo,
        rotation: int = 0,
        copy_from: Path | None = None,
        keep_audio: bool = True,
        container_format: str | None = None,
    ):
        self.path = path
        self.time_base = time_base
        self.encoding = encoding
        self.colour = colour
        self.container = av.open(str(path), mode="w", format=container_format)
        try:
            self.stream = self.container.add_stream(encoding.codec, rate=rate)
            self.stream.width, self.stream.height = width, height
            self.stream.pix_fmt = encoding.pix_fmt
            self.stream.time_base = time_base
            ctx = self.stream.codec_context
            ctx.time_base = time_base
            ctx.options = dict(encoding.options)
            ctx.colorspace, ctx.color_range = colour.matrix, colour.range
            ctx.color_primaries, ctx.color_trc = colour.primaries, colour.transfer
            if rotation:
                self.stream.set_display_rotation(rotation)
            self.copier = StreamCopier(copy_from, self.container, keep_audio) if copy_from else None
            if self.copier:
                self.copier.attach(self.container)
        except Exception:
            self.container.close()
            raise
        self.notices = list(encoding.notices) + (self.copier.notices if self.copier else [])
        self.frames = 0
        self._end: int | None = None  # where the video stream should end (time_base units)
        self._held = None  # the packet not yet muxed
        self._first_pts: int | None = None
        self._first_dts: int | None = None
        self._hold: int | None = None
        self._last_pts: int | None = None

    def _frame(self, rgb: torch.Tensor) -> av.VideoFrame:
        deep = self.encoding.bit_depth > 8
        if rgb.is_floating_point():
            scale = 65535.0 if deep else 255.0
            rgb = (rgb.clamp(0, 1) * scale).round().to(torch.uint16 if deep else torch.uint8)
        arr = np.ascontiguousarray(rgb.permute(1, 2, 0).numpy())
        frame = av.VideoFrame.from_ndarray(arr, format="rgb48le" if deep else "rgb24")
        out = frame.reformat(
            format=self.encoding.pix_fmt,
            dst_colorspace=_MATRIX_NAME.get(self.colour.matrix, "ITU709"),
            dst_color_range="JPEG" if self.colour.range == RANGE_FULL else "MPEG",
        )
        out.colorspace, out.color_range = self.colour.matrix, self.colour.range
        out.color_primaries, out.color_trc = self.colour.primaries, self.colour.transfer
        return out

    def write(self, rgb: torch.Tensor, pts: int, hold: int | None = None) -> None:
        """Encode one (3, H, W) frame at ``pts`` (in ``time_base``): RGB codes (uint8, or uint16 when
        the encoding is deeper than 8 bits), or float RGB in [0, 1]. ``hold`` (for the
        final frame) is how long it is shown, so that the output lasts as long as the input."""
        frame = self._frame(rgb)
        frame.pts = pts
        frame.time_base = self.time_base
        if self._first_pts is None:
            self._first_pts = pts
        if hold:
            self._end, self._hold, self._last_pts = pts + hold, hold, pts
        self._mux(self.stream.encode(frame))
        self.frames += 1

    def _mux(self, packets) -> None:
        # One packet is held back: the last one (in decode order) gets the duration that
        # makes the stream end at ``_end``.
        for packet in packets:
            if self._hold and packet.pts == self._last_pts:
                packet.duration = self._hold  # containers that time a frame by its own duration (Matroska)
            if self._first_dts is None and packet.dts is not None:
                self._first_dts = packet.dts
            if self._held is not None:
                self._mux_now(self._held)
            self._held = packet

    def _mux_now(self, packet) -> None:
        if self.copier and packet.dts is not None:
            self.copier.copy_until(float(packet.dts * packet.time_base))
        self.container.mux(packet)

    def close(self) -> None:
        """Flush the encoder, copy the remaining packets and finish the file."""
        try:
            self._mux(self.stream.encode(None))
            if self._held is not None:
                last = self._held
                if self._end is not None and last.dts is not None and self._first_dts is not None:
                    # Sample durations add up from the first dts; the encoder's reorder delay
                    # (first pts - first dts) is not shown, so it does not count.
                    duration = (self._end - self._first_pts) - (last.dts - self._first_dts)
                    if duration > 0:
                        last.duration = duration
                self._mux_now(self._held)
                self._held = None
            if self.copier:
                self.copier.copy_until(None)
        finally:
            if self.copier:
                self.copier.close()
            self.container.close()

    def abort(self) -> None:
        try:
            if self.copier:
                self.copier.close()
            self.container.close()
        except Exception:  # noqa: BLE001 - the file is deleted anyway
            pass
