"""The progress display of a run: a rich bar on a terminal, a plain line at a steady interval
elsewhere (a log file, CI). Both read a :class:`~stdan_cli.progress.RunProgress`: the phase,
frames done of the total (``~`` while the total is an estimate), the rate of this run's model
work, the run's clock and the time left."""

from __future__ import annotations

import threading
import time
from typing import Callable

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn
from rich.progress_bar import ProgressBar
from rich.table import Column
from rich.text import Text

from stdan_cli.progress import DONE, FIRST_WINDOW, UPSCALING, RunProgress, Snapshot

PLAIN_INTERVAL = 10.0  # seconds between plain lines when the output is not a terminal


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def frames_text(snap: Snapshot) -> str:
    if snap.total is None:
        return f"{snap.done} frames"
    return f"{snap.done}/{'' if snap.exact else '~'}{snap.total} frames"


def speed_text(rate: float) -> str:
    """'1.25 fps', or below one frame a second '3.2 s/frame' (0.03 fps reads as nothing)."""
    if rate >= 1 or rate <= 0:
        return f"{rate:.2f} fps"
    return f"{1 / rate:.1f} s/frame"


def rate_text(snap: Snapshot) -> str:
    return "-- fps" if snap.rate is None else speed_text(snap.rate)


def eta_text(snap: Snapshot) -> str:
    if snap.phase == DONE:
        return "done"
    return f"ETA {clock(snap.eta)}"


def phase_text(snap: Snapshot) -> str:
    if snap.phase == FIRST_WINDOW:  # no frame yet: how long the model has been at it
        return f"{snap.phase} ({clock(snap.phase_elapsed)})"
    return snap.phase


def plain_line(snap: Snapshot) -> str:
    """One line for a log: '[0:01:02] upscaling: 40/99 frames, 1.25 fps, ETA 0:00:47'."""
    parts = [frames_text(snap)] if snap.done or snap.total else []
    if snap.phase in (UPSCALING, DONE) or snap.rate is not None:
        parts += [rate_text(snap)] + ([eta_text(snap)] if snap.phase != DONE else [])
    resumed = f" ({snap.resumed} done before)" if snap.resumed else ""
    return f"[{clock(snap.elapsed)}] {phase_text(snap)}{': ' if parts else ''}{', '.join(parts)}{resumed}"


class _Column(ProgressColumn):
    """A column that reads the run's state when drawn (so the clock moves during a long window)."""

    def __init__(self, run: RunProgress, render, style: str = ""):
        super().__init__(table_column=Column(no_wrap=True))
        self.run, self._render, self.style = run, render, style

    def render(self, task) -> Text:
        return Text(self._render(self.run.snapshot()), style=self.style)


class _Bar(BarColumn):
    def __init__(self, run: RunProgress):
        super().__init__()
        self.run = run

    def render(self, task) -> ProgressBar:
        snap = self.run.snapshot()
        total = snap.total if snap.phase not in (FIRST_WINDOW,) or snap.done else None
        return ProgressBar(total=max(total or 1, snap.done) if total else None, completed=snap.done,
                           width=self.bar_width, pulse=total is None, animation_time=task.get_time())


class ProgressDisplay:
    """Shows ``run`` on ``console`` while open (nothing when ``quiet``); :meth:`print` writes a line above it."""

    def __init__(self, console: Console, run: RunProgress, quiet: bool = False, interval: float | None = None):
        self.console, self.run, self.quiet = console, run, quiet
        self.interval = PLAIN_INTERVAL if interval is None else interval
        self.live = not quiet and console.is_terminal
        self._bar: Progress | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last = ""

    def __enter__(self) -> "ProgressDisplay":
        if self.quiet:
            return self
        if self.live:
            r = self.run
            self._bar = Progress(
                _Column(r, phase_text, "bold"), _Bar(r), _Column(r, frames_text), _Column(r, rate_text),
                _Column(r, lambda s: clock(s.elapsed), "yellow"), _Column(r, eta_text, "cyan"),
                console=self.console, transient=False, refresh_per_second=4,
            )
            self._bar.add_task("run", total=None)
            self._bar.start()
        else:  # a line at a steady interval (so a run that fails at once prints only its error)
            self._thread = threading.Thread(target=self._ticker, name="stdan-progress", daemon=True)
            self._thread.start()
        return self

    def _emit(self) -> None:
        line = plain_line(self.run.snapshot())
        if line != self._last:
            self._last = line
            self.console.print(line, soft_wrap=True, highlight=False)

    def _ticker(self) -> None:
        while not self._stop.wait(self.interval):
            self._emit()

    def print(self, line: str) -> None:
        self.console.print(line, soft_wrap=True)

    def __exit__(self, exc_type, exc, tb) -> None:
        # A run that failed leaves only its error line: the bar is cleared, no last line printed.
        if self.quiet:
            return
        if self._bar is not None:
            if exc_type is not None:
                self._bar.live.transient = True
            else:
                self._bar.refresh()
            self._bar.stop()
        else:
            self._stop.set()
            self._thread.join()
            if exc_type is None:
                self._emit()


class PhaseDisplay:
    """The phases of work that counts no frames (``stdan export``), shown as ``upscale`` shows
    its own: on a terminal one live line (the phase, the run's clock, the phase's clock); elsewhere
    a plain line '[0:01:02] exporting features (0:00:40)' when a phase starts and every
    ``interval`` seconds. Nothing when ``quiet``; :meth:`print` writes a line above it."""

    def __init__(self, console: Console, quiet: bool = False, interval: float | None = None,
                 clock_fn: Callable[[], float] = time.monotonic):
        self.console, self.quiet, self.clock = console, quiet, clock_fn
        self.interval = PLAIN_INTERVAL if interval is None else interval
        self.live = not quiet and console.is_terminal
        self.started = self._phase_started = clock_fn()
        self._phase = ""
        self._lock = threading.Lock()
        self._bar: Progress | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def line(self) -> str:
        now = self.clock()
        with self._lock:
            phase, since = self._phase, self._phase_started
        return f"[{clock(now - self.started)}] {phase} ({clock(now - since)})"

    def phase(self, name: str) -> None:
        with self._lock:
            self._phase, self._phase_started = name, self.clock()
        if not self.quiet and not self.live:
            self.console.print(self.line(), soft_wrap=True, highlight=False)

    def print(self, line: str) -> None:
        if not self.quiet:
            self.console.print(line, soft_wrap=True)

    def __enter__(self) -> "PhaseDisplay":
        if self.quiet:
            return self
        if self.live:
            self._bar = Progress(_Text(self.line), console=self.console, transient=True, refresh_per_second=4)
            self._bar.add_task("phases", total=None)
            self._bar.start()
        else:
            self._thread = threading.Thread(target=self._ticker, name="stdan-phases", daemon=True)
            self._thread.start()
        return self

    def _ticker(self) -> None:
        while not self._stop.wait(self.interval):
            self.console.print(self.line(), soft_wrap=True, highlight=False)

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._bar is not None:
            self._bar.stop()
        if self._thread is not None:
            self._stop.set()
            self._thread.join()


class _Text(ProgressColumn):
    """A column that shows ``render()`` when drawn."""

    def __init__(self, render: Callable[[], str]):
        super().__init__(table_column=Column(no_wrap=True))
        self._render = render

    def render(self, task) -> Text:
        return Text(self._render())
