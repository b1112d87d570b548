"""How many frames of a video lie in a time range, from its packets' timestamps (no decoding).

A container's frame count is often missing or approximate, and a range's count computed from
the nominal rate is off by one where a frame falls on the range's edge. Demuxing the video
stream's packets reads each frame's time without decoding it, and counts the frames exactly
as the job planner keeps them: start <= t < end, t in seconds from the first frame.
"""

from __future__ import annotations

import os
from fractions import Fraction

import av

from stdan_cli.video.sources import open_input


def frame_times(source: str | os.PathLike) -> list[float] | None:
    """Every video frame's time in seconds from the first frame, in order; None when the
    packets do not say (a packet without a timestamp, or the file cannot be read)."""
    try:
        with open_input(source) as container:
            stream = container.streams.video[0]
            tb = Fraction(stream.time_base)
            pts = []
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue  # the demuxer's end marker
                if packet.pts is None:
                    return None
                pts.append(packet.pts)
    except (av.error.FFmpegError, OSError, IndexError):
        return None
    if not pts:
        return None
    pts.sort()  # decode order -> presentation order
    return [float((p - pts[0]) * tb) for p in pts]


def frames_in_range(source: str | os.PathLike, start: float | None, end: float | None) -> int | None:
    """Frames with start <= t < end (None: open), or None when the packets do not say."""
    times = frame_times(source)
    if times is None:
        return None
    return sum(1 for t in times if (start is None or t >= start) and (end is None or t < end))
