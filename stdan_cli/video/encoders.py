"""Choosing and checking the video encoder before any work is done.

Any video encoder of the FFmpeg inside PyAV can be used. The output container chooses the
default codec (one table, :data:`CONTAINERS`); the codecs this project knows get quality
defaults (:data:`KNOWN_CODECS`). Every choice is checked by opening the encoder with the
exact settings (size, pixel format, rate, options) so a bad ``--crf``, ``--preset``,
``--encoder-opt`` or an encoder this machine cannot run fails in one line, before the model
loads. A refused option is an :class:`~stdan_cli.errors.OptionError` (exit 2) naming the option to
change; an output name that says no container is an :class:`~stdan_cli.errors.OutputError`.
"""

from __future__ import annotations

import difflib
import io
import os
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable

import av

from stdan_cli.errors import OptionError, OutputError
from stdan_cli.video.colour import HdrMetadata, HdrParamNames, bit_depth
from stdan_cli.video.logs import captured_errors, quieted, silenced_stderr


@dataclass(frozen=True)
class Container:
    format: str  # FFmpeg's muxer name
    codec: str  # the default video codec
    attachments: bool = False  # can hold attachment streams (fonts)


# File extension -> container. The one place that decides what an output name means.
CONTAINERS = {
    "mp4": Container("mp4", "libx264"),
    "m4v": Container("mp4", "libx264"),
    "mov": Container("mov", "libx264"),
    "mkv": Container("matroska", "libx264", attachments=True),
    "webm": Container("webm", "libvpx-vp9"),
    "avi": Container("avi", "libx264"),
    "nut": Container("nut", "libx264"),
    "ts": Container("mpegts", "libx264"),
}
FALLBACK_EXTENSION = "mkv"  # holds every codec and attachments


def container_for(filename: str) -> Container:
    ext = os.path.splitext(filename)[1].lower().lstrip(".")
    if ext not in CONTAINERS:
        raise OutputError(f"cannot tell the container from '{os.path.basename(filename)}'; use .{', .'.join(CONTAINERS)}")
    return CONTAINERS[ext]


@dataclass(frozen=True)
class CodecDefaults:
    """Defaults of a codec this project knows. ``params`` is the option that takes the
    library's own ``key=value:...`` list, where log level and HDR metadata go."""

    crf: int | None = None
    crf_range: tuple[int, int] | None = None
    preset: str | None = None
    extra: dict = field(default_factory=dict)  # options that go with the defaults
    params: str | None = None
    log_params: tuple[str, ...] = ()  # entries of ``params`` that keep the library's own log to errors
    hdr: HdrParamNames | None = None  # how it takes HDR10 metadata (None: it cannot)


KNOWN_CODECS = {
    "libx264": CodecDefaults(18, (0, 51), "medium", params="x264-params",
                             hdr=HdrParamNames("mastering-display", "cll", 50000, 10000)),
    "libx265": CodecDefaults(20, (0, 51), "medium", params="x265-params", log_params=("log-level=error",),
                             hdr=HdrParamNames("master-display", "max-cll", 50000, 10000)),
    "libvpx-vp9": CodecDefaults(24, (0, 63), None, {"b": "0"}),  # bit rate 0: constant quality
    "libsvtav1": CodecDefaults(30, (1, 63), "8", params="svtav1-params",
                               hdr=HdrParamNames("mastering-display", "content-light")),
    "libaom-av1": CodecDefaults(30, (0, 63), None, {"b": "0"}, params="aom-params"),
    "ffv1": CodecDefaults(),
    "prores": CodecDefaults(),
    "prores_ks": CodecDefaults(),
}

# Pixel formats tried in order when --pix-fmt is not given, by the bits the output needs.
_PREFERRED_FORMATS = {
    8: ("yuv420p", "yuv422p", "yuv444p", "nv12"),
    10: ("yuv420p10le", "p010le", "yuv422p10le", "yuv444p10le", "yuv420p12le", "yuv420p16le", "yuv444p16le"),
}


@dataclass(frozen=True)
class EncodeSettings:
    codec: str | None = None  # None: the container's default (CONTAINERS)
    pix_fmt: str | None = None  # None: yuv420p, or a 10-bit format for deeper or HDR inputs
    crf: int | None = None  # None: the codec's default (KNOWN_CODECS)
    preset: str | None = None
    options: tuple[tuple[str, str], ...] = ()  # --encoder-opt KEY=VALUE, passed to the encoder as is
    quiet: bool = False  # silence the encoder libraries' own logs


@dataclass(frozen=True)
class SourceTraits:
    """What the input asks of the encoder."""

    bit_depth: int = 8
    hdr: bool = False  # an HDR transfer (PQ, HLG): fewer bits would band
    hdr_metadata: HdrMetadata | None = None


@dataclass(frozen=True)
class ResolvedEncoding:
    codec: str
    pix_fmt: str
    options: dict
    bit_depth: int
    notices: tuple[str, ...] = ()


def parse_encoder_options(pairs) -> tuple[tuple[str, str], ...]:
    """``KEY=VALUE`` strings -> pairs; one-line error for anything else."""
    out = []
    for item in pairs or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise OptionError(f"--encoder-opt '{item}' is not KEY=VALUE (e.g. --encoder-opt tune=film)")
        out.append((key.strip(), value))
    return tuple(out)


def video_encoders() -> list[str]:
    """Names of every video encoder this FFmpeg build has."""
    names = []
    for name in sorted(av.codecs_available):
        try:
            codec = av.codec.Codec(name, "w")
        except (av.error.FFmpegError, ValueError, av.codec.codec.UnknownCodecError):
            continue
        if codec.type == "video" and codec.name == name:
            names.append(name)
    return names


def _close_matches(word: str, choices) -> str:
    found = difflib.get_close_matches(word, list(choices), n=4, cutoff=0.5)
    return f"; did you mean {', '.join(found)}?" if found else ""


def _codec(name: str) -> av.codec.Codec:
    try:
        codec = av.codec.Codec(name, "w")
    except (av.error.FFmpegError, ValueError, av.codec.codec.UnknownCodecError):
        raise OptionError(f"unknown video encoder '{name}'{_close_matches(name, video_encoders())}") from None
    if codec.type != "video":
        raise OptionError(f"'{name}' is not a video encoder{_close_matches(name, video_encoders())}")
    return codec


def _option_names(name: str) -> set[str]:
    opts = av.codec.CodecContext.create(name, "w").supported_options
    return {o.name for o in list(opts.private) + list(opts.generic)}


def _choose_pix_fmt(name: str, formats: list[str], wanted: str | None, bits_needed: int, hdr: bool) -> str:
    if wanted:
        if formats and wanted not in formats:
            raise OptionError(f"{name} cannot encode pixel format '{wanted}'; it takes {', '.join(formats)}")
        try:
            depth = bit_depth(wanted)
        except ValueError:
            raise OptionError(f"unknown pixel format '{wanted}'") from None
        if hdr and depth < bits_needed:
            raise OptionError(
                f"--pix-fmt {wanted} has {depth} bits but the input is {bits_needed}-bit HDR (PQ/HLG): it would band; "
                "pick a 10-bit format"
            )
        return wanted
    if not formats:
        return "yuv420p"
    preferred = _PREFERRED_FORMATS[10] if bits_needed > 8 else ()
    preferred += _PREFERRED_FORMATS[8]
    for fmt in preferred:
        if fmt in formats:
            if hdr and bit_depth(fmt) < bits_needed:
                break
            return fmt
    deep = [f for f in formats if _depth_or_zero(f) >= bits_needed and not f.startswith(("gbr", "rgb", "bgr"))]
    if hdr and not any(_depth_or_zero(f) >= bits_needed for f in formats):
        raise OptionError(
            f"{name} has no {bits_needed}-bit pixel format and the input is HDR (PQ/HLG), which would band at 8 bits; "
            f"use --codec {' or '.join(_hdr_carriers())}"
        )
    return deep[0] if deep else formats[0]


def _hdr_carriers() -> list[str]:
    return [name for name, known in KNOWN_CODECS.items() if known.hdr is not None]


def _depth_or_zero(pix_fmt: str) -> int:
    try:
        return bit_depth(pix_fmt)
    except ValueError:
        return 0


def _merge_params(options: dict, key: str | None, params: list[str]) -> None:
    """Prepend ``params`` to the library's own list (the user's entries come later and win)."""
    if not key or not params:
        return
    user = options.get(key)
    options[key] = ":".join(params + ([user] if user else []))


def resolve_encoding(
    settings: EncodeSettings,
    source: SourceTraits,
    container: Container,
    size: tuple[int, int] | Callable[[str], tuple[int, int]] = (64, 64),
    rate: Fraction = Fraction(25),
) -> ResolvedEncoding:
    """Codec, pixel format and options, checked against the container and by opening the encoder
    at ``size`` (or ``size(pix_fmt)``, when the frame size depends on the pixel format chosen)."""
    name = settings.codec or container.codec
    codec = _codec(name)
    probe = av.open(io.BytesIO(), "w", format=container.format)
    try:
        if codec.canonical_name not in probe.supported_codecs:
            raise OptionError(
                f"the {container.format} container cannot hold {name} video; pick another --codec or file extension "
                f"(its default is {container.codec})"
            )
    finally:
        probe.close()
    formats = [f.name for f in codec.video_formats or []]
    bits_needed = max(8, source.bit_depth)
    pix_fmt = _choose_pix_fmt(name, formats, settings.pix_fmt, bits_needed, source.hdr)
    known = KNOWN_CODECS.get(name, CodecDefaults())
    supported = _option_names(name)
    options: dict[str, str] = {}
    notices: list[str] = []

    if settings.crf is not None and known.crf_range:
        low, high = known.crf_range
        if not low <= settings.crf <= high:
            raise OptionError(f"--crf {settings.crf} is out of range for {name}: use {low}..{high} (lower is better quality)")
    crf = settings.crf if settings.crf is not None else known.crf
    if crf is not None:
        if "crf" in supported:
            options["crf"] = str(crf)
            options.update(known.extra)
        else:
            notices.append(f"--crf is ignored: {name} has no CRF mode (pass its own with --encoder-opt)")
    preset = settings.preset or known.preset
    if preset is not None:
        if "preset" in supported:
            options["preset"] = preset
        else:
            notices.append(f"--preset is ignored: {name} has no presets")
    options.update(dict(settings.options))

    params = list(known.log_params)  # the library's info and warnings describe tuning, not problems
    if source.hdr_metadata is not None:
        if known.hdr is None:
            notices.extend(source.hdr_metadata.dropped_notices(name, _hdr_carriers()))
        else:
            params.extend(source.hdr_metadata.encoder_params(known.hdr))
    _merge_params(options, known.params, params)

    _try_open(name, pix_fmt, options, size(pix_fmt) if callable(size) else size, rate, settings.quiet)
    return ResolvedEncoding(name, pix_fmt, options, bit_depth(pix_fmt), tuple(notices))


def _try_open(name: str, pix_fmt: str, options: dict, size: tuple[int, int], rate: Fraction, quiet: bool) -> None:
    ctx = av.codec.CodecContext.create(name, "w")
    ctx.width, ctx.height = size
    ctx.pix_fmt = pix_fmt
    ctx.time_base = 1 / Fraction(rate)
    ctx.framerate = Fraction(rate)
    ctx.options = dict(options)
    try:
        with quieted(quiet), silenced_stderr(), captured_errors() as errors:
            ctx.open()
    except Exception as exc:  # noqa: BLE001 - every refusal of the encoder becomes one line
        reason = errors[-1].rstrip(".") if errors else _reason(exc)
        raise OptionError(f"{name} cannot encode with these settings: {reason}") from None
    unused = sorted(ctx.options)
    if unused:
        close = _close_matches(unused[0], _option_names(name))
        raise OptionError(f"{name} has no option '{unused[0]}'{close} (see `ffmpeg -h encoder={name}`)")


def _reason(exc: Exception) -> str:
    log = getattr(exc, "log", None)
    if log and len(log) == 3 and log[2]:
        return str(log[2]).strip().rstrip(".")
    if isinstance(exc, av.error.FFmpegError):
        return exc.strerror or str(exc)
    return str(exc).split(":")[0] or type(exc).__name__
