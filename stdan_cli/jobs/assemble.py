"""Joining a job's chunks into the output, without re-encoding.

The chunks' video packets are muxed in order (each chunk starts on a keyframe and carries
its final timestamps, so the joined stream is continuous); audio and subtitle packets and
the container's metadata are copied from the input once, interleaved with the video by time.
With a time range only the packets inside it are copied (packet-accurate: a packet is kept
when its start lies in the range), shifted so that the output starts at 0.
The result is written to a file of ours beside the output (a random name, created
exclusively) and renamed to the output's name when complete: never over a file that appeared
there during the run, unless the user allowed replacing the output.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av

from stdan_cli.errors import OutputError
from stdan_cli.safe_files import OutputAppeared, create_exclusive, put_in_place, remove_file, sync_file
from stdan_cli.video.encoders import Container
from stdan_cli.video.metadata import FileMetadata, StreamIdentity, audit
from stdan_cli.video.sources import open_input
from stdan_cli.video.transcode import AudioTranscoder, audio_target


@dataclass(frozen=True)
class CopyRange:
    """Which input packets to copy, in seconds of the input's timeline: start <= t < end,
    written at t - start when ``shift``. The default copies everything unchanged."""

    start: float = float("-inf")
    end: float | None = None
    shift: bool = False


class _Copier:
    """Audio and subtitle packets of the input, in the range, in time order, with each stream's
    language, title and disposition, and the file's tags, chapters and attachments."""

    def __init__(self, source: av.container.InputContainer, output: av.container.OutputContainer, keep_audio: bool,
                 span: CopyRange, container: Container, time_scale: Fraction):
        self.notices: list[str] = []
        self.transcoders: dict[int, AudioTranscoder] = {}  # input stream index -> its re-encoder
        self.span = span
        self.input = source
        self.map: dict[int, av.stream.Stream] = {}
        self.identities: dict[int, StreamIdentity] = {}
        for stream in self.input.streams:
            if stream.type not in ("audio", "subtitle"):
                continue
            label = f"{stream.type} stream #{stream.index} ({stream.codec_context.name})"
            if stream.type == "audio" and not keep_audio:
                self.notices.append(f"{label} dropped: slow motion changes the duration")
                continue
            try:
                if stream.codec_context.name not in output.supported_codecs:
                    copied = self._transcoded(stream, output, label)  # audio re-encoded, else dropped
                    if copied is None:
                        continue
                else:
                    copied = output.add_stream_from_template(stream)
                self.map[stream.index] = copied
            except (av.error.FFmpegError, ValueError) as exc:
                self.notices.append(f"{label} dropped: {exc}")
                continue
            self.identities[copied.index] = StreamIdentity.of(stream, f"{stream.type} stream #{stream.index}")
            self.identities[copied.index].apply(copied)
        # After the streams, so that attachments read back after them and indices stay the same.
        self.file = FileMetadata.of(self.input)
        if span.shift and self.file.chapters:
            self.file = _chapters_in_range(self.file, span)
        self.notices += self.file.apply(output, container.attachments, time_scale)
        self.output = output
        self._packets = iter(self.input.demux([self.input.streams[i] for i in self.map])) if self.map else None
        self._pending = None

    def copy_until(self, seconds: float | None) -> None:
        """Mux the packets (in the range) whose output time is before ``seconds`` (None: all)."""
        while self._packets is not None:
            packet = self._pending or next(self._packets, None)
            self._pending = None
            if packet is None:
                self._packets = None
                for transcoder in self.transcoders.values():
                    self.output.mux(transcoder.feed(None))
                return
            if packet.dts is None or packet.time_base is None:
                continue  # flush packets carry no data
            t = float((packet.pts if packet.pts is not None else packet.dts) * packet.time_base)
            if t < self.span.start or (self.span.end is not None and t >= self.span.end):
                continue
            shift = round(Fraction(self.span.start) / packet.time_base) if self.span.shift else 0
            if seconds is not None and float(packet.dts * packet.time_base) - (self.span.start if self.span.shift else 0) > seconds:
                self._pending = packet
                return
            if shift:
                packet.dts -= shift
                if packet.pts is not None:
                    packet.pts -= shift
            if packet.stream.index in self.transcoders:
                self.output.mux(self.transcoders[packet.stream.index].feed(packet))
                continue
            packet.stream = self.map[packet.stream.index]
            self.output.mux(packet)


    def _transcoded(self, stream, output, label: str):
        """The output stream that ``stream`` is re-encoded into, or None (dropped, with a notice)."""
        target = audio_target(output, stream) if stream.type == "audio" else None
        if target is None:
            self.notices.append(f"{label} dropped: the {output.format.name} container cannot hold it"
                                + (" and no codec it holds can be encoded here" if stream.type == "audio" else ""))
            return None
        self.transcoders[stream.index] = AudioTranscoder(stream, output, target)
        self.notices.append(f"{label} re-encoded to {target}: the {output.format.name} container cannot hold "
                            f"{stream.codec_context.name}")
        return self.transcoders[stream.index].stream


def _chapters_in_range(file: FileMetadata, span: CopyRange) -> FileMetadata:
    """Chapters that overlap the range, clipped to it and moved to start at 0."""
    kept = []
    for c in file.chapters:
        tb = c["time_base"]
        start, end = float(c["start"] * tb), float(c["end"] * tb)
        stop = span.end if span.end is not None else float("inf")
        if end <= span.start or start >= stop:
            continue
        kept.append({**c, "start": round((max(start, span.start) - span.start) / tb),
                     "end": round((min(end, stop) - span.start) / tb)})
    return replace(file, chapters=tuple(kept))


REORDER_DEPTH = 32  # packets held back to find a chunk's last frame (any codec's reorder delay is shorter)


def assemble(
    chunk_files: list[Path],
    chunk_times: list[tuple[Fraction, Fraction]],
    output: Path,
    source: str,
    container: Container,
    keep_audio: bool = True,
    span: CopyRange = CopyRange(),
    time_scale: Fraction = Fraction(1),
    overwrite: bool = False,
    rate: Fraction | None = None,
) -> list[str]:
    """Join ``chunk_files`` (in order) and the input's other streams into ``output``.

    ``chunk_times`` (seconds) is when each chunk's first frame starts and its last frame
    ends: a container may round where a file starts (MP4's edit list keeps milliseconds) and
    not keep how long a frame lasts, while the times within a chunk are exact. Returns
    notices (whatever of the input the container did not keep, found by reading the result
    back). Nothing is left behind if it fails. ``overwrite``: replace whatever is at ``output``
    at the end (else a file that appeared there meanwhile stops the assembly). ``rate``: the
    video's nominal frame rate."""
    temp = create_exclusive(output.parent, output.name)
    notices: list[str] = []
    try:
        with open_input(source) as src, av.open(str(temp), "w", format=container.format) as out:
            video, video_identity = _video_stream(src, out, chunk_files[0], rate)
            copier = _Copier(src, out, keep_audio, span, container, time_scale)
            notices = copier.notices
            muxer = _VideoMuxer(out, video, copier)
            for path, (start, end) in zip(chunk_files, chunk_times):
                _mux_chunk(path, start, end, muxer)
            copier.copy_until(None)
        sync_file(temp)
        notices += audit(temp, container.format, copier.file, {video.index: video_identity, **copier.identities})
        try:
            put_in_place(temp, output, overwrite)
        except OutputAppeared:
            raise OutputError(f"output {output} appeared during the run; pass -y/--overwrite to replace it, or move it "
                              "away") from None
    except BaseException:
        remove_file(temp)
        raise
    return notices


def _video_stream(src, out, first_chunk: Path, rate: Fraction | None):
    """The output's video stream, made from the first chunk's, with the input's stream
    identity (language, title...) applied; returns it and that identity."""
    identity = StreamIdentity.of(src.streams.video[0], f"video stream #{src.streams.video[0].index}")
    with av.open(str(first_chunk)) as first:
        # opaque: the new stream keeps the chunk's decoder as its codec; otherwise PyAV
        # looks for an encoder named after the decoder, and AV1's (libdav1d) has none.
        video = out.add_stream_from_template(first.streams.video[0], opaque=True)
    if rate is not None:
        # The nominal rate: Matroska then records a default frame duration, and a frame
        # lasting otherwise (the last one) gets its own BlockDuration instead of none.
        video.codec_context.framerate = rate
    identity.apply(video)
    return video, identity


class _VideoMuxer:
    """Writes the chunks' video packets in order, the input's other streams copied up to each."""

    def __init__(self, out, video, copier: "_Copier"):
        self.out, self.video, self.copier = out, video, copier
        self.last_dts = None

    def mux(self, packet) -> None:
        # Matroska keeps presentation times only: its demuxer leaves the decode time
        # of a chunk's first packets unset, and the muxer needs it increasing.
        if packet.dts is None or (self.last_dts is not None and packet.dts <= self.last_dts):
            packet.dts = packet.pts if self.last_dts is None else self.last_dts + 1
        self.last_dts = packet.dts
        self.copier.copy_until(float(packet.dts * packet.time_base))
        packet.stream = self.video
        self.out.mux(packet)


def _mux_chunk(path: Path, start: Fraction, end: Fraction, muxer: _VideoMuxer) -> None:
    """One chunk's packets, moved to start at ``start`` (seconds); its last frame shown lasts
    until ``end``. Packets are held back :data:`REORDER_DEPTH` deep to find that last frame."""
    with av.open(str(path)) as chunk:
        held: deque = deque()
        shift = None
        for packet in chunk.demux(chunk.streams.video[0]):
            if packet.size == 0:
                continue  # the demuxer's end marker
            if shift is None and packet.pts is not None:  # the chunk's first frame (a keyframe)
                shift = round(start / packet.time_base) - packet.pts
            if packet.pts is not None:
                packet.pts += shift or 0
            if packet.dts is not None:
                packet.dts += shift or 0
            held.append(packet)
            if len(held) > REORDER_DEPTH:
                muxer.mux(held.popleft())
        if held and all(p.pts is not None for p in held):  # the last frame shown lasts until the chunk's end
            last = max(held, key=lambda p: p.pts)
            duration = round(end / last.time_base) - last.pts
            if duration > (last.duration or 0):
                last.duration = duration
        while held:
            muxer.mux(held.popleft())
