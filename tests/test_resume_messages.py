"""Resume refusals a person reads (issue 22, item 7): `option: old -> new`, saying when an option
was only left out, and options that do not change the frames never block a resume."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from click.testing import CliRunner
from media import InterruptAt, make_video, read_frames

from stdan_cli.api import upscale_video
from stdan_cli.cli import main
from stdan_cli.errors import JobInterrupted, JobMismatch
from stdan_cli.jobs.manifest import Manifest, differences, refusal_text
from stdan_cli.pipeline import UpscaleOptions
from stdan_cli.upscalers import build_upscaler
from stdan_cli.video.encoders import EncodeSettings

LOSSLESS = UpscaleOptions(encoding=EncodeSettings(codec="ffv1", pix_fmt="yuv444p"))


def test_differences_are_option_old_new_in_words():
    recorded = Manifest(input={"size": 1}, model={"--model": "stdan"},
                        options={"--chunk-frames": 30, "encoder options": {"crf": 18, "preset": "medium"},
                                 "--compare": False, "--outscale": 4.0, "--end": None})
    wanted = Manifest(input={"size": 1}, model={"--model": "bicubic"}, left_out=["--chunk-frames"],
                      options={"--chunk-frames": 250, "encoder options": {"crf": 20, "preset": "medium"},
                               "--compare": True, "--outscale": 2.5, "--end": 3.0})
    assert differences(recorded, wanted) == [
        "--chunk-frames: 30 -> 250 (left out: the default)",
        "--compare: off -> on",
        "--end: not given -> 3",
        "--outscale: 4 -> 2.5",
        "encoder options: crf=18 preset=medium -> crf=20 preset=medium",
        "--model: stdan -> bicubic",
    ]
    line = refusal_text("W", differences(recorded, wanted))
    assert "{" not in line and "'" not in line and "pass --restart" in line and "\n" not in line


def test_a_left_out_option_is_named_as_left_out(tmp_path):
    src = make_video(tmp_path / "in.mkv", n_frames=10, size=(24, 16), codec="ffv1", pix_fmt="yuv444p")
    out = tmp_path / "out.mkv"
    with pytest.raises(JobInterrupted):
        upscale_video(src, out, InterruptAt(build_upscaler("bicubic"), 3), replace(LOSSLESS, chunk_frames=3))
    with pytest.raises(JobMismatch) as refused:
        upscale_video(src, out, build_upscaler("bicubic"), LOSSLESS)  # --chunk-frames left out
    message = str(refused.value)
    assert "--chunk-frames: 3 -> 100 (left out: the default)" in message, message
    assert message.endswith("pass --restart to discard it and start over")


def test_options_that_do_not_change_frames_do_not_block_a_resume(tmp_path):
    src = make_video(tmp_path / "in.mkv", n_frames=10, size=(24, 16), codec="ffv1", pix_fmt="yuv444p")
    whole = tmp_path / "whole.mkv"
    upscale_video(src, whole, build_upscaler("bicubic"), replace(LOSSLESS, chunk_frames=3))
    out = tmp_path / "out.mkv"
    with pytest.raises(JobInterrupted):
        upscale_video(src, out, InterruptAt(build_upscaler("bicubic"), 3), replace(LOSSLESS, chunk_frames=3))
    threads = torch.get_num_threads()
    try:  # resumed with other threads, quiet (no progress, no logs): still the same job
        result = CliRunner().invoke(main, ["upscale", str(src), str(out), "--model", "bicubic", "--codec", "ffv1",
                                           "--pix-fmt", "yuv444p", "--chunk-frames", "3", "--threads", "1", "-q"])
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    (got, got_times), (want, want_times) = read_frames(out), read_frames(whole)
    assert got_times == want_times and len(got) == len(want) == 19
    assert all((a == b).all() for a, b in zip(got, want))
