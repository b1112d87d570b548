"""Audio the output container cannot hold as it is: re-encoded to a codec it holds, as FFmpeg does.

The assembly copies every audio stream packet for packet when the output container holds
its codec; otherwise :func:`audio_target` names the codec to use (the container's own
default when it holds it: Opus for WebM, AAC for MP4, else the first of Opus, AAC, Vorbis,
MP3, FLAC, AC-3 it holds and this FFmpeg can encode), and an :class:`AudioTranscoder` decodes
the stream's packets, resamples them to what the encoder takes (Opus: 48 kHz) and encodes
them with the same channel layout. The audio stays continuous: its first sample keeps the
input's start time and the samples follow one another, so its duration is the input's.
"""

from __future__ import annotations

from fractions import Fraction

import av

_PREFERRED = ("opus", "aac", "vorbis", "mp3", "flac", "ac3")  # codec names, in the order tried
_ENCODERS = {"opus": "libopus", "vorbis": "libvorbis", "mp3": "libmp3lame"}  # else the codec's own name
_BITRATES = {"opus": 128_000, "aac": 192_000, "vorbis": 160_000, "mp3": 192_000, "ac3": 384_000}  # for stereo
OPUS_MAX_CHANNELS = 8


def _encoder(codec: str) -> av.codec.Codec | None:
    try:
        return av.codec.Codec(_ENCODERS.get(codec, codec), "w")
    except (av.error.FFmpegError, ValueError):
        return None


def audio_target(output: av.container.OutputContainer, stream: av.audio.stream.AudioStream) -> str | None:
    """The codec to re-encode ``stream`` to for ``output`` (a codec name, e.g. 'opus'), or
    None when no codec the container holds can be encoded here."""
    holds = output.supported_codecs
    default = output.default_audio_codec
    candidates = ([default] if default and default != "none" else []) + list(_PREFERRED)
    channels = stream.codec_context.channels or 2
    for codec in candidates:
        if codec in holds and _encoder(codec) is not None and not (codec == "opus" and channels > OPUS_MAX_CHANNELS):
            return codec
    return None


class AudioTranscoder:
    """One input audio stream re-encoded into a new stream of ``output``."""

    def __init__(self, source: av.audio.stream.AudioStream, output: av.container.OutputContainer, codec: str):
        ctx = source.codec_context
        encoder = _encoder(codec)
        rates = encoder.audio_rates
        rate = ctx.sample_rate if not rates or ctx.sample_rate in rates else max(rates)
        formats = [f.name for f in (encoder.audio_formats or ())]
        fmt = next((f for f in ("fltp", "flt", "s16p", "s16") if f in formats), formats[0] if formats else "fltp")
        layout = ctx.layout.name if ctx.layout is not None else "stereo"
        self.stream = output.add_stream(encoder.name, rate=rate, layout=layout)
        self.stream.format = fmt
        channels = ctx.channels or 2
        if codec in _BITRATES:
            self.stream.bit_rate = _BITRATES[codec] * max(1, channels) // 2
        self.stream.time_base = Fraction(1, rate)
        self.codec = codec
        self.decoder = av.AudioCodecContext.create(ctx.name, "r")
        if ctx.extradata:
            self.decoder.extradata = ctx.extradata
        self.decoder.sample_rate, self.decoder.layout = ctx.sample_rate, ctx.layout
        self.resampler = av.AudioResampler(format=fmt, layout=layout, rate=rate,
                                           frame_size=self.stream.codec_context.frame_size or None)
        self.rate = rate
        self.next_pts: int | None = None  # in 1/rate: where the next resampled sample goes

    def feed(self, packet: av.Packet | None) -> list[av.Packet]:
        """Decode ``packet`` (None: the end), encode what it gives; the packets to mux."""
        out = []
        try:
            frames = self.decoder.decode(packet)
        except av.error.FFmpegError:
            frames = []  # a damaged packet: its samples are lost, the rest is kept
        if packet is None:
            frames = list(frames) + [None]
        for frame in frames:
            if frame is not None and self.next_pts is None:
                start = packet.pts if packet is not None and packet.pts is not None else 0
                self.next_pts = round(start * packet.time_base * self.rate) if packet is not None else 0
            for resampled in self.resampler.resample(frame):
                resampled.pts = self.next_pts or 0
                resampled.time_base = Fraction(1, self.rate)
                self.next_pts = (self.next_pts or 0) + resampled.samples
                out += self.stream.encode(resampled)
        if packet is None:
            out += self.stream.encode(None)
        for p in out:
            p.stream = self.stream
        return out
