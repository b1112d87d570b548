"""Encoding the upscaled frames with PyAV (one job chunk at a time, :mod:`stdan_cli.jobs.chunk`).

- the encoder is chosen and checked beforehand (:mod:`stdan_cli.video.encoders`);
- RGB is converted with an explicit matrix and range, and the output is tagged with them
  (plus the input's primaries and transfer) so players show the colours the input had;
- the display rotation and the pixel aspect ratio are kept; the output is tagged progressive.

The input's other streams and metadata are copied when the chunks are joined
(:mod:`stdan_cli.jobs.assemble`).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from stdan_cli.video.colour import RANGE_FULL, SWS_MATRIX, ColourInfo
from stdan_cli.video.deinterlace import FIELD_ORDER_PROGRESSIVE
from stdan_cli.video.encoders import Container, ResolvedEncoding


def output_colour(colour: ColourInfo, height: int, pix_fmt: str, is_rgb: bool) -> ColourInfo:
    """The tags the output gets: what decoding assumed for the matrix and range (explicit,
    since the 4x larger output would otherwise be guessed as HD), the input's primaries and
    transfer. RGB inputs (images) are encoded as BT.709 limited range, tagged sRGB."""
    if is_rgb:
        return ColourInfo(matrix=1, range=1, primaries=1, transfer=13)
    return colour.resolved(height, pix_fmt)


def usable_dts(pts: int, dts: int, previous: int | None, following: int | None, earliest: int) -> int:
    """``dts`` when it can be this packet's decode time: not after its ``pts``, after the
    ``previous`` packet's, and not before ``earliest`` (see :meth:`VideoWriter._earliest_dts`).
    Otherwise its ``pts`` (the latest it may be decoded), moved before the ``following``
    packet's (a usable decode time, or None) and after the previous one's.

    The cause: x265 leaves its B-frame delay uninitialised when fewer frames than that delay
    reach the encoder (x265 issue 781), which a job's short chunks do (a 1-2 frame scene, the
    edge of a range): libx265 4.2 then hands out decode times offset by garbage in either
    direction (seen for pts 0: 71776123339407616, -1157442765409226768, -193273528365).
    A late one is refused by the muxer ("pts < dts"); an early one would make the last frame's
    duration, which is computed from the decode times, wrong."""
    if earliest <= dts <= pts and (previous is None or dts > previous):
        return dts
    usable = pts
    if following is not None:
        usable = min(usable, following - 1)
    if previous is not None:
        usable = max(usable, previous + 1)
    return usable


class VideoWriter:
    """Writes RGB frames as a video stream to ``path``."""

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        rate: Fraction,
        time_base: Fraction,
        encoding: ResolvedEncoding,
        colour: ColourInfo,
        container: Container,
        rotation: int = 0,
        sar: Fraction | None = None,
    ):
        self.path = path
        self.time_base = time_base
        self.step = max(1, round(1 / (Fraction(rate) * Fraction(time_base))))  # one frame, in time_base units
        self.encoding = encoding
        self.colour = colour
        self.format = container.format
        self.container = av.open(str(path), mode="w", format=container.format)
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
            ctx.field_order = FIELD_ORDER_PROGRESSIVE
            if sar:
                ctx.sample_aspect_ratio = sar
                self.stream.sample_aspect_ratio = sar
            if rotation:
                self.stream.set_display_rotation(rotation)
        except Exception:
            self.container.close()
            raise
        self.notices = list(encoding.notices)
        self.frames = 0
        self._end: int | None = None  # where the video stream should end (time_base units)
        self._held = None  # the packet not yet muxed
        self._first_pts: int | None = None
        self._max_pts: int | None = None  # of the frames given to the encoder
        self._first_dts: int | None = None  # of the packets muxed
        self._last_dts: int | None = None
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
            dst_colorspace=SWS_MATRIX.get(self.colour.matrix, "ITU709"),
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
        self._max_pts = pts if self._max_pts is None else max(self._max_pts, pts)
        if hold:
            self._end, self._hold, self._last_pts = pts + hold, hold, pts
        self._mux(self.stream.encode(frame))
        self.frames += 1

    def _mux(self, packets) -> None:
        # One packet is held back: the last one (in decode order) gets the duration that
        # makes the stream end at ``_end``, and a held packet's neighbours are known.
        for packet in packets:
            if self._hold and packet.pts == self._last_pts:
                packet.duration = self._hold  # containers that time a frame by its own duration (Matroska)
            if self._held is not None:
                self._write(self._held, packet)
            self._held = packet

    def _earliest_dts(self) -> int:
        """The earliest decode time an encoder can give: its reorder delay holds back at most
        the frames it was given, so decoding starts no earlier than the first frame's time
        less the time those frames span (and one frame more, as a margin)."""
        return self._first_pts - (self._max_pts - self._first_pts) - self.step

    def _dts(self, packet, following) -> None:
        """Give ``packet`` a usable decode time (see :func:`usable_dts`), once, before it is muxed."""
        if packet.pts is None or packet.dts is None:
            return
        earliest = self._earliest_dts()
        after = None
        if following is not None and following.pts is not None and following.dts is not None:
            after = following.dts if earliest <= following.dts <= following.pts else None
        packet.dts = usable_dts(packet.pts, packet.dts, self._last_dts, after, earliest)

    def _write(self, packet, following) -> None:
        self._dts(packet, following)
        self._mux_one(packet)

    def _mux_one(self, packet) -> None:
        if packet.dts is not None:
            if self._first_dts is None:
                self._first_dts = packet.dts
            self._last_dts = packet.dts
        self.container.mux(packet)

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        try:
            self._mux(self.stream.encode(None))
            if self._held is not None:
                last = self._held
                self._dts(last, None)
                first_dts = self._first_dts if self._first_dts is not None else last.dts
                if self._end is not None and last.dts is not None and first_dts is not None:
                    # Sample durations add up from the first dts; the encoder's reorder delay
                    # (first pts - first dts) is not shown, so it does not count.
                    duration = (self._end - self._first_pts) - (last.dts - first_dts)
                    if duration > 0:
                        last.duration = duration
                self._mux_one(last)
                self._held = None
        finally:
            self.container.close()

    def abort(self) -> None:
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - the file is deleted anyway
            pass
