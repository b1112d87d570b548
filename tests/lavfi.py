"""Test inputs made by the apt `ffmpeg` from lavfi sources, and `ffprobe` as the independent
judge of what we write."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

FFMPEG, FFPROBE = shutil.which("ffmpeg"), shutil.which("ffprobe")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None or FFPROBE is None, reason="ffmpeg/ffprobe not installed (apt-get install ffmpeg)")


def ffmpeg(*args) -> None:
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *map(str, args)], check=True)


def ffprobe(path, *extra) -> dict:
    out = subprocess.run(
        [FFPROBE, "-v", "error", "-show_streams", "-show_format", "-show_chapters", "-of", "json", *extra, str(path)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout)


def first_frame_side_data(path) -> list[dict]:
    info = ffprobe(path, "-show_frames", "-read_intervals", "%+#1", "-select_streams", "v:0")
    return info["frames"][0].get("side_data_list", [])


def video(info: dict) -> dict:
    return next(s for s in info["streams"] if s["codec_type"] == "video")


def lavfi_video(path, size="72x48", rate=25, frames=4, extra_filters="", codec=("-c:v", "libx264", "-qp", "0")):
    """``frames`` frames of testsrc2 (moving content)."""
    vf = f"testsrc2=s={size}:r={rate}" + (f",{extra_filters}" if extra_filters else "")
    ffmpeg("-f", "lavfi", "-i", vf, "-frames:v", frames, *codec, path)
    return path
