"""Jobs end to end: chunks, resume after SIGTERM and SIGKILL, refusals, scene cuts, ranges.

Frames are compared exactly through a lossless codec (FFV1, 4:4:4)."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from job_runs import LOSSLESS, LOSSLESS_ARGS, run_until, same_frames, stdan_command
from media import InterruptAt, make_video, read_frames
from scene_media import shots

from stdan_cli.api import upscale_video
from stdan_cli.cli import main
from stdan_cli.errors import JobInterrupted, JobMismatch
from stdan_cli.model import STDAN, STDANConfig
from stdan_cli.pipeline import UpscaleOptions
from stdan_cli.upscalers import build_upscaler
from stdan_cli.video.encoders import EncodeSettings

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_small_chunks_sigterm_sigkill_resume_and_one_chunk_give_identical_frames(tmp_path, weights, small):
    frames, _ = shots([9, 8], size=(24, 16))
    src = make_video(tmp_path / "in.mkv", frames=frames, codec="ffv1", pix_fmt="yuv444p")
    one = upscale_video(src, tmp_path / "one.mkv", small, replace(LOSSLESS, chunk_frames=1000))
    many = upscale_video(src, tmp_path / "many.mkv", small, replace(LOSSLESS, chunk_frames=3))
    assert (one.chunks, one.scenes, many.scenes) == (2, 2, 2) and many.chunks >= 5
    assert same_frames(tmp_path / "one.mkv", tmp_path / "many.mkv")

    out = tmp_path / "killed.mkv"
    work = tmp_path / ".killed.mkv.stdan-job"
    command = stdan_command(src, out, weights, "--chunk-frames", "3")
    stopped = run_until(command, work, 1, signal.SIGTERM)
    assert stopped.returncode == 130, stopped.stderr
    line = stopped.stderr.strip().splitlines()[-1]
    assert "interrupted" in line and "run the same command again" in line and "Traceback" not in stopped.stderr
    kept = len(list(work.glob("*.done.json")))
    killed = run_until(command, work, kept + 1, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    done = len(list(work.glob("*.done.json")))
    assert not out.exists() and 1 <= done < many.chunks
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    resumed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming: {done} chunk(s) already done" in resumed.stderr
    assert f"{many.chunks} chunks, {done} resumed" in resumed.stderr
    assert same_frames(tmp_path / "one.mkv", out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mkv", "killed.mkv", "many.mkv", "one.mkv"]


def test_changed_input_option_or_weights_refused_restart_and_a_corrupted_chunk_redone(tmp_path, bicubic, weights):
    frames, _ = shots([9, 8], size=(24, 16))
    src = make_video(tmp_path / "in.mkv", frames=frames, codec="ffv1", pix_fmt="yuv444p")
    counting = InterruptAt(bicubic, at=0)  # never interrupts; counts windows
    reference = upscale_video(src, tmp_path / "ref.mkv", counting, replace(LOSSLESS, chunk_frames=3))
    windows = counting.calls
    out = tmp_path / "out.mkv"
    work = tmp_path / ".out.mkv.stdan-job"
    job = dict(chunk_frames=3)
    with pytest.raises(JobInterrupted, match="3 chunk.s. done are kept .* run the same command again"):
        upscale_video(src, out, InterruptAt(bicubic, 4), replace(LOSSLESS, **job))
    assert len(list(work.glob("*.done.json"))) == 3 and not out.exists()

    refusals = [
        (dict(options=UpscaleOptions(encoding=EncodeSettings(codec="libx264"))), r"--codec: ffv1 -> libx264"),
        (dict(job=dict(chunk_frames=3, scene_threshold=40)), r"--scene-threshold: 27 -> 40"),
        (dict(job=dict(chunk_frames=4)), r"--chunk-frames: 3 -> 4"),
        (dict(job=dict(chunk_frames=3, end=1.0)), r"--end: not given -> 1"),
        (dict(upscaler=build_upscaler("stdan", weights=weights, device="cpu")), r"--model: bicubic -> stdan"),
    ]
    for change, message in refusals:
        kwargs = dict(options=LOSSLESS, job=job, upscaler=bicubic) | change
        with pytest.raises(JobMismatch, match=message + ".*pass --restart"):
            upscale_video(src, out, kwargs["upscaler"], replace(kwargs["options"], **kwargs["job"]))
    torch.manual_seed(1)
    other = tmp_path / "other.pth"
    torch.save(STDAN(STDANConfig.small()).state_dict(), other)
    stdan_job = dict(chunk_frames=3, work_dir=tmp_path / "stdan-work")
    with pytest.raises(JobInterrupted):
        upscale_video(src, tmp_path / "s.mkv", InterruptAt(build_upscaler("stdan", weights=weights, device="cpu"), 2),
                      replace(LOSSLESS, **stdan_job))
    with pytest.raises(JobMismatch, match="the weights: sha256"):
        upscale_video(src, tmp_path / "s.mkv", build_upscaler("stdan", weights=other, device="cpu"), replace(LOSSLESS, **stdan_job))

    # The input changed (same size, new content and time): refused, naming it.
    changed = tmp_path / "changed.mkv"
    data = bytearray(src.read_bytes())
    changed.write_bytes(data)
    backup = src.read_bytes()
    src.write_bytes(bytes(data[:-1]) + bytes([data[-1] ^ 1]))
    with pytest.raises(JobMismatch, match="the input: .*content"):
        upscale_video(src, out, bicubic, replace(LOSSLESS, **job))
    src.write_bytes(backup)
    os.utime(src, ns=(os.stat(changed).st_atime_ns, os.stat(changed).st_mtime_ns))
    with pytest.raises(JobMismatch, match=r"the input: mtime changed"):
        upscale_video(src, out, bicubic, replace(LOSSLESS, **job))

    # --restart discards the work folder and starts over.
    notes = []
    fresh = upscale_video(src, out, bicubic, replace(LOSSLESS, chunk_frames=3, restart=True), notify=notes.append)
    assert fresh.resumed == 0 and not any("resuming" in n for n in notes) and same_frames(tmp_path / "ref.mkv", out)
    assert fresh.chunks == reference.chunks and not work.exists()

    # A damaged done chunk is made again; the others are reused.
    out.unlink()
    with pytest.raises(JobInterrupted):
        upscale_video(src, out, InterruptAt(bicubic, 4), replace(LOSSLESS, **job))
    chunk = work / "chunk-000001.mkv"
    raw = bytearray(chunk.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    chunk.write_bytes(bytes(raw))
    notes = []
    counting = InterruptAt(bicubic, at=0)
    repaired = upscale_video(src, out, counting, replace(LOSSLESS, **job), notify=notes.append)
    assert "chunk 1 does not match its sha256; it will be made again" in notes
    assert "resuming: 2 chunk(s) already done" in notes[-1] and repaired.resumed == 2
    assert counting.calls == windows - 2  # chunks 0 and 2 (one window each) were not made again
    assert same_frames(tmp_path / "ref.mkv", out)


def test_a_run_interrupted_before_its_first_chunk_leaves_nothing(tmp_path, bicubic):
    src = make_video(tmp_path / "in.mkv", n_frames=12, codec="ffv1", pix_fmt="yuv444p")
    with pytest.raises(JobInterrupted, match="nothing was written"):
        upscale_video(src, tmp_path / "out.mkv", InterruptAt(bicubic, 2), replace(LOSSLESS, chunk_frames=1000))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mkv"]


CUT_CLIP = [5, 6]  # two shots: frames 0-4 and 5-10


@pytest.fixture(scope="module")
def cut_clip(tmp_path_factory, small):
    """A clip with one hard cut (frame 5), with audio, and its full upscale by the small STDAN."""
    root = tmp_path_factory.mktemp("cut")
    frames, cuts = shots(CUT_CLIP, size=(24, 16))
    src = make_video(root / "in.mkv", frames=frames, codec="ffv1", pix_fmt="yuv444p", audio=True)
    full = upscale_video(src, root / "full.mkv", small, LOSSLESS)
    return root, src, frames, cuts, full


def test_each_scene_is_upscaled_as_its_own_clip_and_the_cut_repeats_a_frame(cut_clip, small, bicubic, tmp_path):
    root, src, frames, (cut,), full = cut_clip
    assert full.scenes == 2 and full.frames_out == 2 * len(frames) - 1
    out, times = read_frames(root / "full.mkv")
    assert times == pytest.approx([0.05 * p for p in range(len(out))], abs=1e-3)  # as without cuts
    assert np.array_equal(out[2 * cut - 1], out[2 * cut - 2])  # the in-between frame at the cut
    for scene, (a, b) in enumerate([(0, cut), (cut, len(frames))]):
        alone = make_video(tmp_path / f"scene{scene}.mkv", frames=frames[a:b], codec="ffv1", pix_fmt="yuv444p")
        upscale_video(alone, tmp_path / f"up{scene}.mkv", small, LOSSLESS)
        mine, _ = read_frames(tmp_path / f"up{scene}.mkv")
        assert all(np.array_equal(x, y) for x, y in zip(mine, out[2 * a : 2 * b - 1])), scene

    # No output frame mixes the two shots (the bicubic baseline averages neighbours in time,
    # so a window across the cut would blend them).
    upscale_video(src, tmp_path / "bicubic.mkv", bicubic, LOSSLESS)
    blended = upscale_video(src, tmp_path / "blended.mkv", bicubic, replace(LOSSLESS, scene_threshold=0))
    assert blended.scenes == 1
    shot_means = [np.mean(frames[:cut], axis=(0, 1, 2)), np.mean(frames[cut:], axis=(0, 1, 2))]

    def mixes(frame):
        mean = frame.reshape(-1, 3).mean(0)
        return min(np.abs(mean - m).max() for m in shot_means) > 20

    assert not any(mixes(f) for f in read_frames(tmp_path / "bicubic.mkv")[0])
    assert [p for p, f in enumerate(read_frames(tmp_path / "blended.mkv")[0]) if mixes(f)] == [2 * cut - 1]


def test_a_range_gives_the_full_runs_frames_from_time_zero_with_its_audio(cut_clip, small, tmp_path):
    root, src, frames, _, _ = cut_clip
    out = tmp_path / "range.mkv"
    summary = upscale_video(src, out, small, replace(LOSSLESS, start=0.25, end=0.85))  # frames 3..8
    assert summary.frames_in == 6 and summary.frames_out == 11 and summary.scenes == 2
    full, _ = read_frames(root / "full.mkv")
    got, times = read_frames(out)
    assert times == pytest.approx([0.05 * p for p in range(11)], abs=1e-3)
    assert all(np.array_equal(x, y) for x, y in zip(got, full[6:17])) and len(got) == 11
    # Audio: the packets that start inside [0.3, 0.85), shifted to start with the video.
    with av.open(str(src)) as c:
        a = c.streams.audio[0]
        want = [bytes(p) for p in c.demux(a) if p.dts is not None and 0.3 <= float(p.pts * p.time_base) < 0.85]
    with av.open(str(out)) as c:
        a = c.streams.audio[0]
        packets = [p for p in c.demux(a) if p.dts is not None]
        got_audio = [bytes(p) for p in packets]
        first = float(packets[0].pts * packets[0].time_base)
    assert got_audio == want and len(want) > 5
    assert 0 <= first < 1024 / 48000 + 0.002


def test_cli_scenes_file_range_and_summary(tmp_path):
    frames, _ = shots([6, 6], size=(24, 16))
    src = make_video(tmp_path / "in.mkv", frames=frames, codec="ffv1", pix_fmt="yuv444p")
    listed = tmp_path / "cuts.txt"
    listed.write_text("0.3\n9\n")  # frame 3 (0.3 s) and frame 9; the detector would say 6
    runner = CliRunner()
    result = runner.invoke(main, ["upscale", str(src), str(tmp_path / "o.mkv"), "--model", "bicubic", *LOSSLESS_ARGS,
                                  "--scenes", str(listed), "--chunk-frames", "2"])
    assert result.exit_code == 0, result.output
    assert "23 frames" in result.output and "3 scenes" in result.output
    out, _ = read_frames(tmp_path / "o.mkv")
    assert [p for p in range(1, 23, 2) if np.array_equal(out[p], out[p - 1])] == [5, 17]
    result = runner.invoke(main, ["upscale", str(src), str(tmp_path / "r.mkv"), "--model", "bicubic",
                                  "--start", "0:00.2", "--end", "0.75"])  # frames 2..7, detected cut at 6
    assert result.exit_code == 0 and "11 frames" in result.output and "2 scenes" in result.output, result.output
    bad_time = runner.invoke(main, ["upscale", str(src), str(tmp_path / "x.mkv"), "--start", "1:99"])
    assert bad_time.exit_code == 2 and "below 60" in bad_time.output and "Traceback" not in bad_time.output
    for args, message in [(["--start", "2", "--end", "1"], "must be after --start"),
                          (["--scenes", str(tmp_path / "none.txt")], "does not exist"),
                          (["--start", "50"], "no frame of")]:
        result = runner.invoke(main, ["upscale", str(src), str(tmp_path / "x.mkv"), "--model", "bicubic", *args])
        assert result.exit_code != 0 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cuts.txt", "in.mkv", "o.mkv", "r.mkv"]


def test_chunks_made_by_separate_executors_in_any_order_then_assembled(tmp_path, bicubic):
    """What array tasks do: each run makes its share of the chunks (here one chunk each, in
    reverse order) and stops; a last run finds every chunk done and only assembles."""
    from stdan_cli.cluster import PartExecutor, parse_part
    from stdan_cli.jobs import run_job
    from stdan_cli.pipeline import plan_upscale

    frames, _ = shots([9, 8], size=(24, 16))
    src = make_video(tmp_path / "in.mkv", frames=frames, codec="ffv1", pix_fmt="yuv444p", audio=True)
    options = replace(LOSSLESS, chunk_frames=3)
    whole = upscale_video(src, tmp_path / "whole.mkv", bicubic, options)
    plan = plan_upscale(src, tmp_path / "out.mkv", bicubic.descriptor, options)
    n = whole.chunks
    for k in reversed(range(1, n + 1)):
        part = run_job(plan, bicubic, PartExecutor(bicubic, parse_part(f"{k}/{n}")))
        assert part.made == 1 and not (tmp_path / "out.mkv").exists()
    counting = InterruptAt(bicubic, at=0)
    last = run_job(plan, counting)
    assert last.resumed == n and last.made == 0 and counting.calls == 0
    assert same_frames(tmp_path / "whole.mkv", tmp_path / "out.mkv")
    with av.open(str(tmp_path / "whole.mkv")) as a, av.open(str(tmp_path / "out.mkv")) as b:
        assert [bytes(p) for p in a.demux(audio=0)] == [bytes(p) for p in b.demux(audio=0)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mkv", "out.mkv", "whole.mkv"]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_chunk_boundaries_keep_exact_times_at_ntsc_rates(tmp_path, bicubic, suffix):
    """29.97 fps: MP4 keeps where a chunk file starts only to the millisecond and Matroska
    counts milliseconds; the joined output must still have the times of one pass."""
    from fractions import Fraction

    src = make_video(tmp_path / "in.mp4", n_frames=14, time_base=Fraction(1001, 30000), pts=list(range(14)))
    one = upscale_video(src, tmp_path / f"one{suffix}", bicubic, UpscaleOptions(chunk_frames=1000))
    many = upscale_video(src, tmp_path / f"many{suffix}", bicubic, UpscaleOptions(chunk_frames=2))
    assert one.chunks == 1 and many.chunks >= 4
    _, t_one = read_frames(tmp_path / f"one{suffix}")
    _, t_many = read_frames(tmp_path / f"many{suffix}")
    assert len(t_one) == 27 and t_many == t_one
