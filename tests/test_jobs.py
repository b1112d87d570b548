"""Jobs end to end: chunks, resume after SIGTERM and SIGKILL, refusals, scene cuts, ranges.

Frames are compared exactly through a lossless codec (FFV1, 4:4:4)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from media import InterruptAt, make_video, read_frames
from scene_media import shots

from stdan_cli.cli import main
from stdan_cli.errors import JobInterrupted, JobMismatch
from stdan_cli.jobs import JobOptions
from stdan_cli.model import STDAN, STDANConfig
from stdan_cli.pipeline import UpscaleOptions, upscale_video
from stdan_cli.upscalers import build_upscaler
from stdan_cli.video.encoders import EncodeSettings

REPO = Path(__file__).resolve().parents[1]
LOSSLESS = UpscaleOptions(encoding=EncodeSettings(codec="ffv1", pix_fmt="yuv444p"))
LOSSLESS_ARGS = ["--codec", "ffv1", "--pix-fmt", "yuv444p"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "small.pth"
    torch.save(STDAN(STDANConfig.small()).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def small(weights):
    torch.set_num_threads(1)
    return build_upscaler("stdan", weights=weights, device="cpu")


@pytest.fixture(scope="module")
def bicubic():
    return build_upscaler("bicubic")


def same_frames(a: Path, b: Path) -> bool:
    fa, ta = read_frames(a)
    fb, tb = read_frames(b)
    return len(fa) == len(fb) and ta == tb and all(np.array_equal(x, y) for x, y in zip(fa, fb))


def stdan_command(src, out, weights, *extra):
    return [sys.executable, "-m", "stdan_cli", "upscale", str(src), str(out), "--weights", str(weights),
            "--device", "cpu", "--threads", "1", *LOSSLESS_ARGS, *extra]


def run_until(command, work_dir: Path, done_records: int, sig: int, timeout: float = 240) -> subprocess.CompletedProcess:
    """Start ``command``, wait until ``work_dir`` holds ``done_records`` done records, send ``sig``."""
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if len(list(work_dir.glob("*.done.json"))) >= done_records:
            proc.send_signal(sig)
            break
        time.sleep(0.01)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def test_small_chunks_sigterm_sigkill_resume_and_one_chunk_give_identical_frames(tmp_path, weights, small):
    frames, _ = shots([9, 8], size=(24, 16))
    src = make_video(tmp_path / "in.mkv", frames=frames, codec="ffv1", pix_fmt="yuv444p")
    one = upscale_video(src, tmp_path / "one.mkv", small, LOSSLESS, job=JobOptions(chunk_frames=1000))
    many = upscale_video(src, tmp_path / "many.mkv", small, LOSSLESS, job=JobOptions(chunk_frames=3))
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
    reference = upscale_video(src, tmp_path / "ref.mkv", counting, LOSSLESS, job=JobOptions(chunk_frames=3))
    windows = counting.calls
    out = tmp_path / "out.mkv"
    work = tmp_path / ".out.mkv.stdan-job"
    job = JobOptions(chunk_frames=3)
    with pytest.raises(JobInterrupted, match="3 chunk.s. done are kept .* run the same command again"):
        upscale_video(src, out, InterruptAt(bicubic, 4), LOSSLESS, job=job)
    assert len(list(work.glob("*.done.json"))) == 3 and not out.exists()

    refusals = [
        (dict(options=UpscaleOptions(encoding=EncodeSettings(codec="libx264"))), r"--codec: ffv1 -> libx264"),
        (dict(job=JobOptions(chunk_frames=3, scene_threshold=40)), r"--scene-threshold: 27 -> 40"),
        (dict(job=JobOptions(chunk_frames=4)), r"--chunk-frames: 3 -> 4"),
        (dict(job=JobOptions(chunk_frames=3, end=1.0)), r"--end: not given -> 1"),
        (dict(upscaler=build_upscaler("stdan", weights=weights, device="cpu")), r"--model: bicubic -> stdan"),
    ]
    for change, message in refusals:
        kwargs = dict(options=LOSSLESS, job=job, upscaler=bicubic) | change
        with pytest.raises(JobMismatch, match=message + ".*pass --restart"):
            upscale_video(src, out, kwargs["upscaler"], kwargs["options"], job=kwargs["job"])
    torch.manual_seed(1)
    other = tmp_path / "other.pth"
    torch.save(STDAN(STDANConfig.small()).state_dict(), other)
    stdan_job = JobOptions(chunk_frames=3, work_dir=tmp_path / "stdan-work")
    with pytest.raises(JobInterrupted):
        upscale_video(src, tmp_path / "s.mkv", InterruptAt(build_upscaler("stdan", weights=weights, device="cpu"), 2),
                      LOSSLESS, job=stdan_job)
    with pytest.raises(JobMismatch, match="the weights: sha256"):
        upscale_video(src, tmp_path / "s.mkv", build_upscaler("stdan", weights=other, device="cpu"), LOSSLESS, job=stdan_job)

    # The input changed (same size, new content and time): refused, naming it.
    changed = tmp_path / "changed.mkv"
    data = bytearray(src.read_bytes())
    changed.write_bytes(data)
    backup = src.read_bytes()
    src.write_bytes(bytes(data[:-1]) + bytes([data[-1] ^ 1]))
    with pytest.raises(JobMismatch, match="the input: .*content"):
        upscale_video(src, out, bicubic, LOSSLESS, job=job)
    src.write_bytes(backup)
    os.utime(src, ns=(os.stat(changed).st_atime_ns, os.stat(changed).st_mtime_ns))
    with pytest.raises(JobMismatch, match=r"the input: mtime changed"):
        upscale_video(src, out, bicubic, LOSSLESS, job=job)

    # --restart discards the work folder and starts over.
    notes = []
    fresh = upscale_video(src, out, bicubic, LOSSLESS, job=JobOptions(chunk_frames=3, restart=True), notify=notes.append)
    assert fresh.resumed == 0 and not any("resuming" in n for n in notes) and same_frames(tmp_path / "ref.mkv", out)
    assert fresh.chunks == reference.chunks and not work.exists()

    # A damaged done chunk is made again; the others are reused.
    out.unlink()
    with pytest.raises(JobInterrupted):
        upscale_video(src, out, InterruptAt(bicubic, 4), LOSSLESS, job=job)
    chunk = work / "chunk-000001.mkv"
    raw = bytearray(chunk.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    chunk.write_bytes(bytes(raw))
    notes = []
    counting = InterruptAt(bicubic, at=0)
    repaired = upscale_video(src, out, counting, LOSSLESS, job=job, notify=notes.append)
    assert "chunk 1 does not match its sha256; it will be made again" in notes
    assert "resuming: 2 chunk(s) already done" in notes[-1] and repaired.resumed == 2
    assert counting.calls == windows - 2  # chunks 0 and 2 (one window each) were not made again
    assert same_frames(tmp_path / "ref.mkv", out)


def test_a_run_interrupted_before_its_first_chunk_leaves_nothing(tmp_path, bicubic):
    src = make_video(tmp_path / "in.mkv", n_frames=12, codec="ffv1", pix_fmt="yuv444p")
    with pytest.raises(JobInterrupted, match="nothing was written"):
        upscale_video(src, tmp_path / "out.mkv", InterruptAt(bicubic, 2), LOSSLESS, job=JobOptions(chunk_frames=1000))
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
    blended = upscale_video(src, tmp_path / "blended.mkv", bicubic, LOSSLESS, job=JobOptions(scene_threshold=0))
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
    summary = upscale_video(src, out, small, LOSSLESS, job=JobOptions(start=0.25, end=0.85))  # frames 3..8
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


def test_plan_chunks_in_any_order_and_assemble_as_separate_steps(tmp_path, bicubic):
    """The steps a scheduler of other processes uses: the complete plan first, chunks made one
    by one in any order (each needs only the job and an upscaler), then the assembly."""
    from stdan_cli.jobs import assemble_job, plan_job, prepare_job, run_chunk
    from stdan_cli.pipeline import plan_upscale

    frames, _ = shots([9, 8], size=(24, 16))
    src = make_video(tmp_path / "in.mkv", frames=frames, codec="ffv1", pix_fmt="yuv444p", audio=True)
    whole = upscale_video(src, tmp_path / "whole.mkv", bicubic, LOSSLESS, job=JobOptions(chunk_frames=3))

    def job():  # each step as if in a fresh process
        return prepare_job(plan_upscale(src, tmp_path / "out.mkv", bicubic.descriptor, LOSSLESS), bicubic,
                           JobOptions(chunk_frames=3))

    manifest = plan_job(job())
    assert manifest.planned and len(manifest.chunks) == whole.chunks
    with pytest.raises(Exception, match="not complete"):
        assemble_job(job())
    for k in reversed(range(len(manifest.chunks))):
        record = run_chunk(job(), k, bicubic)
        assert record.spec == manifest.chunks[k] and record.frames == manifest.chunks[k].outputs
    assemble_job(job())
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
    one = upscale_video(src, tmp_path / f"one{suffix}", bicubic, job=JobOptions(chunk_frames=1000))
    many = upscale_video(src, tmp_path / f"many{suffix}", bicubic, job=JobOptions(chunk_frames=2))
    assert one.chunks == 1 and many.chunks >= 4
    _, t_one = read_frames(tmp_path / f"one{suffix}")
    _, t_many = read_frames(tmp_path / f"many{suffix}")
    assert len(t_one) == 27 and t_many == t_one
