"""``--vf FILTERGRAPH``: an FFmpeg filter chain on the decoded frames, before the model.

What ``ffmpeg -vf`` does with a chain of filters (``crop=...,nlmeans=...,scale=...``) is done
here through PyAV's filter graph: each filter is added and linked in order, between a buffer
source made from the input stream and a buffer sink. The frames that come out may have another
size (``crop``, ``scale``), another rate or count (``fps``, ``framestep``) or other times; the
reader takes the size and rate from them, and the job plans on them like on any input, so
chunks, ranges and resume stay frame-exact. Chains only: labels (``[a]``) and several chains
(``;``) are refused in one line.
"""

from __future__ import annotations

from fractions import Fraction

import av
import av.filter

from stdan_cli.errors import OptionError
from stdan_cli.video.deinterlace import drain


def parse_chain(text: str) -> list[tuple[str, str | None]]:
    """'crop=8:8,hqdn3d' -> [('crop', '8:8'), ('hqdn3d', None)]; commas inside quotes or escaped
    with a backslash belong to the filter's arguments, as in FFmpeg's syntax."""
    if not text or not text.strip():
        raise OptionError("--vf needs a filter, e.g. --vf nlmeans or --vf crop=iw-16:ih-16")
    parts, current, quoted, escaped = [], [], False, False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch == "'":
            current.append(ch)
            quoted = not quoted
        elif ch in ";[" and not quoted:
            raise OptionError(f"--vf {text}: only a chain of filters separated by commas is supported "
                              "(no [labels] or ';' branches)")
        elif ch == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    chain = []
    for part in parts:
        name, _, args = part.strip().partition("=")
        if not name:
            raise OptionError(f"--vf {text}: an empty filter between commas")
        chain.append((name.strip(), args.strip() or None))
    return chain


class VideoFilter:
    """Frames in, the chain's frames out, timed in ``time_base`` (the input stream's)."""

    def __init__(self, stream: av.video.stream.VideoStream, text: str):
        self.text = text
        self.time_base = Fraction(stream.time_base)
        self.graph = av.filter.Graph()
        node = self.graph.add_buffer(template=stream)
        try:
            for name, args in parse_chain(text):
                nxt = self.graph.add(name, args) if args is not None else self.graph.add(name)
                node.link_to(nxt)
                node = nxt
            sink = self.graph.add("buffersink")
            node.link_to(sink)
            self.graph.configure()
        except OptionError:
            raise
        except (av.error.FFmpegError, ValueError, KeyError) as exc:
            raise OptionError(f"--vf {text}: {getattr(exc, 'strerror', None) or exc} (in the FFmpeg of PyAV {av.__version__})") from None

    def push(self, frame: av.VideoFrame | None) -> list[av.VideoFrame]:
        """Feed one frame (None: the end) and return the frames that came out."""
        try:
            self.graph.push(frame)
        except av.error.FFmpegError as exc:
            raise OptionError(f"--vf {self.text}: {exc.strerror or exc}") from None
        return drain(self.graph, self.time_base)
