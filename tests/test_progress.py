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
        self.phases, self.totals, self.dones = [], [], []
        self.listeners.append(self.phases.append)

    def total(self, frames, exact=False):
        self.totals.append((frames, exact))
        super().total(frames, exact)

    def advance(self, done):
        self.t += 1
        self.dones.append(done)
        super().advance(done)

    def window_started(self):
        self.t += 1
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
    import stdan_cli.cli.progress as display

    monkeypatch.setattr(display, "PLAIN_INTERVAL", 0.05)  # a line every 50 ms instead of every 10 s
    result = CliRunner().invoke(main, ["upscale", str(clip), str(tmp_path / "o.mkv"), "--model", "bicubic",
                                       "--codec", "ffv1", "--end", "0.28", "--scenes-out", str(tmp_path / "s.txt")])
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
