"""The one error path: whatever a user can meet mid-run becomes one line, a non-zero exit and
no partial file (out of memory, FFmpeg failing to write, bad encoder settings)."""

from __future__ import annotations

import os

import pytest
import torch
from click.testing import CliRunner
from media import make_video

import stdan_cli.upscalers.registry as upscaler_registry  # the upscale command builds its upscaler there
from stdan_cli.cli import main
from stdan_cli.cli.main import OUT_OF_MEMORY
from stdan_cli.upscalers import build_upscaler


def _one_line(result) -> str:
    assert "Traceback" not in result.output, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


class _RaisesOnSecondWindow:
    """The bicubic upscaler, except that its second window raises ``error``."""

    def __init__(self, error: BaseException):
        self.inner = build_upscaler("bicubic")
        self.name, self.precision, self.device, self.descriptor = "x", "fp32", self.inner.device, self.inner.descriptor
        self.notices, self.weights_sha256 = [], None
        self.error, self.calls = error, 0

    def reset(self):
        self.inner.reset()

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == 2:
            raise self.error
        return self.inner(*args, **kwargs)


@pytest.mark.parametrize("error", [torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
                                   MemoryError()], ids=["torch", "python"])
def test_out_of_memory_is_one_line_suggesting_tiles(tmp_path, monkeypatch, error):
    src = make_video(tmp_path / "in.mp4", n_frames=12)
    out = tmp_path / "out.mp4"
    monkeypatch.setattr(upscaler_registry, "build_upscaler", lambda *a, **k: _RaisesOnSecondWindow(error))
    result = CliRunner().invoke(main, ["upscale", str(src), str(out), "--model", "bicubic"])
    assert result.exit_code == 1
    line = _one_line(result)
    assert line == f"error: {OUT_OF_MEMORY}" and "--tile" in line and "--memory-budget" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux) to make writes fail")
def test_ffmpeg_write_failure_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    """The assembly writes to /dev/full, where every write fails with ENOSPC, as on a full disk
    (its temporary file is swapped for a link there, which the tool itself never makes):
    FFmpeg's error while muxing becomes one line. The chunks already made stay in the work
    folder, the line says how to continue, and the same command then only redoes the assembly."""
    import stdan_cli.jobs.assemble as assemble

    src = make_video(tmp_path / "in.mp4", n_frames=12)
    out = tmp_path / "out.mkv"
    full = tmp_path / "full-disk"
    full.symlink_to("/dev/full")
    with monkeypatch.context() as patch:
        patch.setattr(assemble, "create_exclusive", lambda folder, name: full)
        result = CliRunner().invoke(main, ["upscale", str(src), str(out), "--model", "bicubic"])
    assert result.exit_code == 1
    line = _one_line(result)
    assert "No space left on device" in line and "run the same command again" in line
    assert full.is_symlink()  # a link is never removed, only regular files the run made
    full.unlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.mkv.stdan-job", "in.mp4"]
    again = CliRunner().invoke(main, ["upscale", str(src), str(out), "--model", "bicubic"])
    assert again.exit_code == 0 and "resuming: 1 chunk(s)" in again.output, again.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mkv"]


@pytest.mark.parametrize("option", [["--crf", "-5"], ["--preset", "bogus"]])
def test_bad_encoder_settings_are_one_line(tmp_path, option):
    src = make_video(tmp_path / "in.mp4", n_frames=3)
    result = CliRunner().invoke(main, ["upscale", str(src), str(tmp_path / "o.mp4"), "--model", "bicubic", *option])
    assert result.exit_code != 0
    _one_line(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


@pytest.mark.parametrize("args, message", [
    (["--stride", "4"], "--stride must be between 1 and window-1"),
    (["--tile", "0"], "--tile must be a positive"),
    (["--memory-budget", "0"], "--memory-budget must be a positive"),
    (["--threads", "0"], "--threads must be at least 1"),
    (["--device", "tpu"], "unknown device"),
])
def test_option_errors_exit_2_in_one_line(tmp_path, args, message):
    src = make_video(tmp_path / "in.mp4", n_frames=3)
    result = CliRunner().invoke(main, ["upscale", str(src), str(tmp_path / "o.mp4"), "--model", "bicubic", *args])
    assert result.exit_code == 2
    assert message in _one_line(result)


def test_a_bug_is_not_hidden(tmp_path, monkeypatch):
    """Only errors a user can meet become one line; a programming error keeps its traceback."""
    src = make_video(tmp_path / "in.mp4", n_frames=12)
    monkeypatch.setattr(upscaler_registry, "build_upscaler", lambda *a, **k: _RaisesOnSecondWindow(ZeroDivisionError()))
    result = CliRunner().invoke(main, ["upscale", str(src), str(tmp_path / "o.mp4"), "--model", "bicubic"])
    assert isinstance(result.exception, ZeroDivisionError)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]
