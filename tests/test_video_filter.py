"""``--vf FILTERGRAPH`` (issue 22, item 6): the frames are those of ``ffmpeg -vf`` of the same
input, size and rate follow the filter, chunks, ranges and resume stay frame-exact."""

from __future__ import annotations

import subprocess
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner
from media import InterruptAt, read_frames

from stdan_cli.api import upscale_video
from stdan_cli.cli import main
from stdan_cli.errors import JobInterrupted
from stdan_cli.pipeline import UpscaleOptions
from stdan_cli.upscalers import build_upscaler
from stdan_cli.video.encoders import EncodeSettings

LOSSLESS_ARGS = ["--model", "bicubic", "--codec", "ffv1", "--pix-fmt", "yuv444p"]
CLEAN = "crop=32:24:4:2,deblock,nlmeans=s=3"


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-v", "error", "-y", *map(str, args)], check=True)


def upscale(*args):
    result = CliRunner().invoke(main, ["upscale", *map(str, args), *LOSSLESS_ARGS])
    assert result.exit_code == 0, result.output
    return result


def same(a, b) -> bool:
    (fa, ta), (fb, tb) = read_frames(a), read_frames(b)
    return ta == tb and len(fa) == len(fb) and all(np.array_equal(x, y) for x, y in zip(fa, fb))


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    path = tmp_path_factory.mktemp("vf") / "noisy.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=40x30:rate=10:duration=2,noise=alls=20:allf=t",
           "-c:v", "ffv1", "-pix_fmt", "yuv444p", path)
    return path


@pytest.mark.parametrize("chain, frames, size", [
    (CLEAN, 39, (128, 96)),
    ("scale=20:16,fps=5", 19, (80, 64)),  # another size and half the rate: 10 frames in
])
def test_vf_frames_equal_ffmpeg_vf_through_the_same_model(tmp_path, noisy, chain, frames, size):
    filtered = tmp_path / "ffmpeg-vf.mkv"
    ffmpeg("-i", noisy, "-vf", chain, "-c:v", "ffv1", "-pix_fmt", "yuv444p", filtered)
    upscale(filtered, tmp_path / "reference.mkv")
    upscale(noisy, tmp_path / "ours.mkv", "--vf", chain)
    assert same(tmp_path / "ours.mkv", tmp_path / "reference.mkv")
    got, times = read_frames(tmp_path / "ours.mkv")
    assert len(got) == frames and got[0].shape[:2] == size[::-1]


@pytest.mark.slow
def test_chunks_ranges_and_resume_stay_frame_exact(tmp_path, noisy):
    options = UpscaleOptions(encoding=EncodeSettings(codec="ffv1", pix_fmt="yuv444p"), video_filter=CLEAN)
    bicubic = build_upscaler("bicubic")
    one = tmp_path / "one.mkv"
    upscale_video(noisy, one, bicubic, replace(options, chunk_frames=100))
    chunked = tmp_path / "chunked.mkv"
    upscale_video(noisy, chunked, bicubic, replace(options, chunk_frames=3))
    assert same(one, chunked)

    resumed = tmp_path / "resumed.mkv"
    with pytest.raises(JobInterrupted):
        upscale_video(noisy, resumed, InterruptAt(bicubic, 4), replace(options, chunk_frames=3))
    upscale_video(noisy, resumed, bicubic, replace(options, chunk_frames=3))
    assert same(one, resumed)

    # A range gives the whole run's frames in it (output frames 2k..: input frames 5..14).
    part = tmp_path / "range.mkv"
    upscale_video(noisy, part, bicubic, replace(options, chunk_frames=3, start=0.5, end=1.5))
    whole, _ = read_frames(one)
    got, _ = read_frames(part)
    assert len(got) == 19 and all(np.array_equal(x, y) for x, y in zip(got, whole[10:29]))


def test_a_bad_filter_is_one_line_before_any_work(tmp_path, noisy):
    for chain, says in [("nosuchfilter=1", "no filter"), ("crop=iw:ih,[x]", "only a chain"),
                        ("scale=w=-5:h=oops", "--vf scale=w=-5:h=oops")]:
        result = CliRunner().invoke(main, ["upscale", str(noisy), str(tmp_path / "o.mkv"), "--model", "bicubic",
                                           "--vf", chain])
        lines = result.output.strip().splitlines()
        assert result.exit_code != 0 and len(lines) == 1 and lines[0].startswith("error: --vf") and says in lines[0]
        assert not (tmp_path / "o.mkv").exists()
