"""Tiny test videos made with PyAV, with known content and metadata."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

GREY_STEP = 16  # frame k is a flat grey of level BASE + STEP * k: the order survives upscaling
GREY_BASE = 40


def grey_level(k: int) -> int:
    return (GREY_BASE + GREY_STEP * k) % 256


def make_video(
    path: Path,
    n_frames: int = 5,
    size: tuple[int, int] = (24, 16),  # (width, height)
    rate: int = 10,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    frames: list[np.ndarray] | None = None,  # RGB uint8 (H, W, 3); default: flat greys
    pts: list[int] | None = None,  # in units of time_base; default 0, 1, 2, ... at 1/rate
    time_base: Fraction | None = None,
    audio: bool = False,
    rotation: int = 0,
    colour: dict | None = None,  # colorspace / color_range / color_primaries / color_trc (FFmpeg enums)
    options: dict | None = None,
) -> Path:
    w, h = size
    out = av.open(str(path), "w")
    vs = out.add_stream(codec, rate=rate)
    vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
    vs.codec_context.options = options or ({"qp": "0"} if codec == "libx264" else {})
    tb = time_base or Fraction(1, rate)
    vs.time_base = tb
    vs.codec_context.time_base = tb
    colour = colour or {}
    for k, v in colour.items():
        setattr(vs.codec_context, k, v)
    if rotation:
        vs.set_display_rotation(rotation)
    aus = None
    if audio:
        aus = out.add_stream("aac", rate=48000)
        aus.layout = "mono"
    if frames is None:
        frames = [np.full((h, w, 3), grey_level(k), np.uint8) for k in range(n_frames)]
    matrix = {1: "ITU709", 5: "ITU601", 6: "SMPTE170M", 9: "BT2020"}.get(colour.get("colorspace", 6), "ITU601")
    full = colour.get("color_range") == 2
    for k, rgb in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
            format=pix_fmt, dst_colorspace=matrix, dst_color_range="JPEG" if full else "MPEG"
        )
        for key, v in colour.items():
            setattr(frame, key, v)
        frame.pts = pts[k] if pts else k * int(1 / (rate * tb))
        frame.time_base = tb
        for packet in vs.encode(frame):
            out.mux(packet)
    for packet in vs.encode(None):
        out.mux(packet)
    if aus is not None:
        duration = float(len(frames) / rate)
        samples = int(48000 * duration)
        t = np.arange(samples) / 48000
        wave = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for start in range(0, samples, 1024):
            chunk = wave[start : start + 1024][None, :]
            af = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
            af.sample_rate = 48000
            af.pts = start
            for packet in aus.encode(af):
                out.mux(packet)
        for packet in aus.encode(None):
            out.mux(packet)
    out.close()
    return path


def read_frames(path: Path):
    """(frames as RGB uint8 arrays, their times in seconds) using our decoder."""
    from stdan_cli.video.decode import VideoReader

    with VideoReader(path) as r:
        frames = list(r.frames())
        tb = r.info.time_base
    return [(f.rgb.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for f in frames], [float(f.pts * tb) for f in frames]


def packets(path: Path, kind: str) -> list[tuple[int | None, bytes]]:
    with av.open(str(path)) as c:
        streams = [s for s in c.streams if s.type == kind]
        if not streams:
            return []
        return [(p.pts, bytes(p)) for p in c.demux(streams) if p.dts is not None]


class InterruptAt:
    """An upscaler that raises KeyboardInterrupt (as Ctrl-C would) on its ``at``-th window."""

    def __init__(self, inner, at: int):
        self.inner, self.at, self.calls = inner, at, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return self.inner(*args, **kwargs)
