"""Interlaced input: detection, and FFmpeg's ``bwdif`` deinterlacer through PyAV's filter graph.

The model expects progressive frames: the two fields of an interlaced frame were shot at
different times, and upscaling them together magnifies the combs. ``bwdif`` makes one
progressive frame per input frame (``mode=send_frame``), so timing is unchanged.
"""

from __future__ import annotations

from fractions import Fraction

import av
import av.filter

DEINTERLACE_MODES = ("auto", "on", "off")  # auto: on when the input is interlaced
_INTERLACED_FIELD_ORDERS = {2, 3, 4, 5}  # AVFieldOrder: TT, BB, TB, BT (0 unknown, 1 progressive)
FIELD_ORDER_PROGRESSIVE = 1


def is_interlaced(stream: av.video.stream.VideoStream, first_frame: av.VideoFrame | None) -> bool:
    """Interlaced by the stream's field order or by the first frame's flag."""
    order = int(stream.codec_context.field_order or 0)
    return order in _INTERLACED_FIELD_ORDERS or bool(first_frame is not None and first_frame.interlaced_frame)


def should_deinterlace(mode: str, interlaced: bool) -> bool:
    if mode not in DEINTERLACE_MODES:
        raise ValueError(f"unknown deinterlace mode '{mode}'; use one of {', '.join(DEINTERLACE_MODES)}")
    return mode == "on" or (mode == "auto" and interlaced)


class Deinterlacer:
    """Frames in, the same number of progressive frames out (one frame late, then flushed)."""

    def __init__(self, stream: av.video.stream.VideoStream):
        self.time_base = Fraction(stream.time_base)
        self.graph = av.filter.Graph()
        source = self.graph.add_buffer(template=stream)
        bwdif = self.graph.add("bwdif", "mode=send_frame:parity=auto:deint=all")
        sink = self.graph.add("buffersink")
        source.link_to(bwdif)
        bwdif.link_to(sink)
        self.graph.configure()

    def push(self, frame: av.VideoFrame | None) -> list[av.VideoFrame]:
        """Feed one frame (None: the end) and return the frames that came out, timed in the
        stream's time base (bwdif counts in half of it, for its field-rate mode)."""
        self.graph.push(frame)
        return drain(self.graph, self.time_base)


def drain(graph: av.filter.Graph, time_base: Fraction) -> list[av.VideoFrame]:
    """The frames a filter graph has ready, retimed from the graph's time base to ``time_base``."""
    out = []
    while True:
        try:
            done = graph.pull()
        except (av.error.BlockingIOError, av.error.EOFError):
            return out
        if done.time_base and Fraction(done.time_base) != time_base:
            scale = Fraction(done.time_base) / time_base
            if done.pts is not None:
                done.pts = round(done.pts * scale)
            if done.duration:
                done.duration = round(done.duration * scale)
            done.time_base = time_base
        out.append(done)
