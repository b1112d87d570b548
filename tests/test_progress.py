"""Progress that tells the truth (issue 22, item 2): phases, exact totals for ranges and modes,
a rate from this run's work only (resumed chunks are not speed), one clock for display and
summary, plain lines when the output is not a terminal."""

from __future__ import annotations

from dataclasses import replace

import pytest
from click.testing import CliRunner
from media import InterruptAt, make_video

from stdan_cli.api import upscale_video
from stdan_cli.cli import main
from stdan_cli.errors import JobInterrupted
from stdan_cli.pipeline import UpscaleOptions
from stdan_cli.progress import ASSEMBLING, FIRST_WINDOW, PLANNING, UPSCALING, RunProgress
from stdan_cli.upscalers import build_upscaler
from stdan_cli.video.encoders import EncodeSettings

LOSSLESS = UpscaleOptions(encoding=EncodeSettings(codec="ffv1", pix_fmt="yuv444p"))


class Recorder(RunProgress):
    """A RunProgress on a fake clock that advances one second per event, recording what it saw."""

    def __init__(self):
        self.t = 0.0
        super().__init__(clock=lambda: self.t)
        self.phases, self.totals, self.dones, self.window_totals = [], [], [], []
        self.started_windows = 0
        self.listeners.append(self.phases.append)

    def total(self, frames, exact=False):
        self.totals.append((frames, exact))
        super().total(frames, exact)

    def advance(self, done):
        self.t += 1
        self.dones.append(done)
        super().advance(done)

    def windows(self, total):
        self.window_totals.append(total)
        super().windows(total)

    def window_started(self):
        self.t += 1
        self.started_windows += 1
        super().window_started()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    # 20 frames at 25 fps: a frame every 0.04 s, so --end 0.28 falls exactly on frame 7
    # (0.28 * 25 is 7.000000000000001 in floating point: a rate-based count says 8).
    return make_video(tmp_path_factory.mktemp("clip") / "in.mkv", n_frames=20, rate=25, size=(24, 16),
                      codec="ffv1", pix_fmt="yuv444p")


@pytest.mark.parametrize("mode, start, end, outputs", [
    ("spacetime", None, 0.28, 13),  # frames 0..6
    ("spacetime", 0.1, 0.5, 19),  # frames 3..12
    ("space", 0.12, None, 17),  # frames 3..19
    ("slowmo", None, None, 39),
])
def test_range_totals_are_exact_from_the_start(tmp_path, clip, mode, start, end, outputs):
    seen = Recorder()
    summary = upscale_video(clip, tmp_path / "out.mkv", build_upscaler("bicubic"),
                            UpscaleOptions(mode=mode, encoding=LOSSLESS.encoding, start=start, end=end, chunk_frames=4),
                            progress=seen)
    assert summary.frames_out == outputs
    assert seen.totals[0] == (outputs, False)  # the first total, before any frame, is already right
    assert seen.totals[-1] == (outputs, True)  # and the plan confirms it
    assert seen.dones[-1] == outputs and seen.snapshot().total == outputs
    assert seen.phases[:3] == [FIRST_WINDOW, UPSCALING, ASSEMBLING]
    assert seen.window_totals == [seen.started_windows]  # the ETA's window count is the job's


def test_the_window_count_of_a_job_is_its_windows(tmp_path, clip):
    seen = Recorder()
    upscale_video(clip, tmp_path / "out.mkv", build_upscaler("bicubic"), replace(LOSSLESS, chunk_frames=4),
                  progress=seen)
    assert seen.window_totals == [seen.started_windows] == [7]  # 20 frames: starts 0, 3, ..., 15, then 16


def test_resumed_chunks_count_as_done_not_as_speed(tmp_path, clip):
    out = tmp_path / "out.mkv"
    job = dict(chunk_frames=4)
    with pytest.raises(JobInterrupted):
        upscale_video(clip, out, InterruptAt(build_upscaler("bicubic"), 4), replace(LOSSLESS, **job))
    seen = Recorder()
    seen.phase(PLANNING)
    upscale_video(clip, out, build_upscaler("bicubic"), replace(LOSSLESS, **job), progress=seen)
    snap = seen.snapshot()
    assert snap.resumed > 0 and snap.done == 39 and snap.total == 39
    made = 39 - snap.resumed
    assert seen.made() == made
    # Rate: only the frames made this run, over the time since this run's first window.
    assert snap.rate == pytest.approx(made / seen.work_seconds())


def test_a_part_counts_its_own_share_with_other_parts_done_beside_it(tmp_path, clip):
    # Array tasks share one work folder: when task 2 starts, task 1's chunks are done there. Task
    # 2's progress is its own share (total, resumed, done), with a first window and a rate.
    from stdan_cli.cluster import PartExecutor, parse_part
    from stdan_cli.jobs import run_job
    from stdan_cli.pipeline.plan import plan_upscale

    bicubic = build_upscaler("bicubic")
    plan = plan_upscale(clip, tmp_path / "out.mkv", bicubic.descriptor, replace(LOSSLESS, chunk_frames=4))
    first = run_job(plan, bicubic, PartExecutor(bicubic, parse_part("1/2")))
    seen = Recorder()
    second = run_job(plan, bicubic, PartExecutor(bicubic, parse_part("2/2")), progress=seen)
    share = second.frames_made
    assert first.made > 0 and second.made > 0 and 0 < share < 39
    assert (share, True) in seen.totals and seen.dones[-1] == share  # its share, not the job's 39 frames
    assert FIRST_WINDOW in seen.phases and seen.made() == share
    assert seen.snapshot().resumed == 0 and seen.snapshot().rate == pytest.approx(share / seen.work_seconds())


def test_rate_and_eta_come_from_the_work():
    seen = Recorder()
    seen.total(100)
    seen.t = 10.0  # planning and loading took 10 s: not in the rate
    seen.window_started()  # t = 11
    assert seen.snapshot().phase == FIRST_WINDOW and seen.snapshot().rate is None
    seen.t = 21.0
    seen.advance(10)  # t = 22: 10 frames in 11 s of work
    snap = seen.snapshot()
    assert snap.phase == UPSCALING and snap.rate == pytest.approx(10 / 11) and snap.eta == pytest.approx(90 * 11 / 10)
    assert seen.finish() == snap.elapsed == 22.0
    seen.t = 99.0
    assert seen.elapsed() == 22.0  # the clock stopped: the summary reads what the display last showed


def test_not_a_terminal_gets_plain_lines_and_the_summary_time_is_the_clock(tmp_path, clip, monkeypatch):
    # Each window takes at least 50 ms, so the run outlasts several 50 ms intervals whatever the
    # machine's speed (bicubic alone can finish all 13 frames inside one interval).
    import time

    from stdan_cli.upscalers.bicubic import BicubicUpscaler

    upscale = BicubicUpscaler.__call__

    def slow(self, *args, **kwargs):
        time.sleep(0.05)
        return upscale(self, *args, **kwargs)

    monkeypatch.setattr(BicubicUpscaler, "__call__", slow)
    result = CliRunner().invoke(main, ["upscale", str(clip), str(tmp_path / "o.mkv"), "--model", "bicubic",
                                       "--codec", "ffv1", "--end", "0.28", "--scenes-out", str(tmp_path / "s.txt"),
                                       "--log-interval", "0.05"])  # a line every 50 ms instead of every 10 s
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    progress = [line for line in lines if line.startswith("[")]
    assert len(progress) >= 2
    assert progress[-1].startswith("[") and "] done: 13/13 frames" in progress[-1]
    clock = progress[-1][1:8]
    h, m, s = (int(x) for x in clock.split(":"))
    summary = next(line for line in lines if line.startswith("wrote "))
    seconds = float(summary.split(" in ")[1].split(" s ")[0])
    assert abs(seconds - (h * 3600 + m * 60 + s)) <= 0.5
    assert "\x1b" not in result.output  # no terminal codes in a log


def _windows_run(costs, frames_per_window, windows_total):
    """A run on a fake clock: each window takes its cost in seconds and adds its frames.
    Yields (time, ETA seen, true time left) at the start of each window and inside it."""
    t = [0.0]
    run = RunProgress(clock=lambda: t[0])
    total = sum(frames_per_window)
    run.total(total, exact=True)
    run.windows(windows_total)
    end = sum(costs)
    done = 0
    for cost, frames in zip(costs, frames_per_window):
        run.window_started()
        for step in (0.0, 0.25, 0.5, 0.75):
            t[0] = round(t[0] + (cost / 4 if step else 0), 6)
            yield t[0], run.snapshot().eta, end - t[0]
        t[0] += cost / 4
        done += frames
        run.advance(done)


def test_eta_counts_windows_not_frames():
    # 11 input frames: windows at 0, 3, 6 and an end-aligned one at 7 that adds only 2 of the
    # 21 output frames but costs a full window. At 10 s a window, when the last window starts
    # 10 s are left; a rate in frames (19 frames in 30 s) said 3 s.
    seen = list(_windows_run([10, 10, 10, 10], [7, 6, 6, 2], windows_total=4))
    at_last_start = [eta for t, eta, left in seen if t == 30][0]
    assert at_last_start == pytest.approx(10)
    for t, eta, left in seen:
        if t >= 10:  # once one window is complete, the estimate is the truth at equal costs
            assert eta == pytest.approx(left), t


def test_eta_never_climbs_during_a_window():
    seen = list(_windows_run([8, 12, 10, 11, 9, 10], [7, 6, 6, 6, 6, 2], windows_total=6))
    etas = [eta for t, eta, left in seen if eta is not None]
    assert len(etas) >= 16
    # within each window the estimate only falls; it may rise only when a window's cost is learnt
    for i in range(len(seen) - 1):
        (t0, e0, _), (t1, e1, _) = seen[i], seen[i + 1]
        if e0 is not None and e1 is not None and i % 4 != 3:
            assert e1 <= e0, (t0, e0, t1, e1)


def test_eta_without_a_window_count_falls_back_to_frames():
    seen = list(_windows_run([10, 10, 10, 10], [7, 6, 6, 2], windows_total=None))
    assert [eta for t, eta, left in seen if t == 30][0] == pytest.approx(2 / (19 / 30))


def test_rates_below_one_frame_a_second_read_as_seconds_per_frame():
    # Issue 32: "0.03 fps" says little; "32.0 s/frame" says how long a frame takes.
    from stdan_cli.cli.progress import plain_line, speed_text

    assert speed_text(0.3125) == "3.2 s/frame" and speed_text(1 / 32) == "32.0 s/frame"
    assert speed_text(1.25) == "1.25 fps" and speed_text(1.0) == "1.00 fps"
    seen = Recorder()
    seen.total(100)
    seen.window_started()  # t = 1
    seen.t = 31.0
    seen.advance(1)  # t = 32: 1 frame in 31 s
    assert "31.0 s/frame" in plain_line(seen.snapshot())


def test_upscale_takes_a_log_interval_as_eval_does(tmp_path, clip):
    # Issue 32: eval had --log-interval, upscale printed its plain lines every 10 s, fixed.
    result = CliRunner().invoke(main, ["upscale", str(clip), str(tmp_path / "o.mkv"), "--model", "bicubic",
                                       "--codec", "ffv1", "--log-interval", "0.02"])
    assert result.exit_code == 0, result.output
    progress_lines = [line for line in result.output.splitlines() if line.startswith("[0:")]
    assert len(progress_lines) >= 2, result.output  # one at the end, others every 0.02 s on the way
    helped = CliRunner().invoke(main, ["upscale", "--help"])
    assert "--log-interval" in helped.output and "default: 10" in helped.output
