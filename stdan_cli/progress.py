"""What a run reports while it works, and the rate and time left computed from it.

The job layer reports events to a :class:`RunProgress` (or any object with the same methods:
see :class:`ProgressEvents`); a display (``stdan_cli.cli.progress``) reads its state. The
events, in the order a run sends them:

- ``phase(name)``: what is happening now, one of :data:`PHASES` (loading weights, starting Ray
  workers, planning, first window, upscaling, assembling);
- ``resumed(frames)``: output frames of chunks a previous run completed (counted as done, never
  as speed);
- ``total(frames, exact)``: the output frames the run will have, an estimate (from the
  container) until ``exact``;
- ``windows(total)``: the model windows the whole job will have (an estimate: scene cuts add
  a few), when the input's frame count is known;
- ``window_started()``: the model starts a window (the first one starts the rate's clock);
- ``advance(done)``: output frames done so far, resumed ones included;
- the plain callable ``progress(done, total)`` of earlier versions is ``advance`` + ``total``.

The rate counts only this run's model work: frames made since the first window started, over
the time since then. The time left counts windows, not frames: every window costs the same
model time, while the frames it adds differ (the first adds 7, the others 6, the last,
end-aligned one as few as 2). Once a window is complete, the time left is the windows still to
start times the mean window's cost, plus what the current window has left of that cost (so it
falls while a window runs, never climbs). Without a window count (a Ray run, an input of
unknown length) it is the frames still to make at the frame rate. One clock, from the moment
the :class:`RunProgress` was made, serves the display and the summary.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

LOADING = "loading weights"
STARTING_RAY = "starting Ray workers"
PLANNING = "planning"
DETECTING = "detecting scenes"
FIRST_WINDOW = "first window"
UPSCALING = "upscaling"
ASSEMBLING = "assembling"
DONE = "done"
PHASES = (LOADING, STARTING_RAY, PLANNING, DETECTING, FIRST_WINDOW, UPSCALING, ASSEMBLING, DONE)


class ProgressEvents(Protocol):
    """What the job layer calls (see the module's docstring)."""

    def phase(self, name: str) -> None: ...
    def resumed(self, frames: int) -> None: ...
    def total(self, frames: int | None, exact: bool = False) -> None: ...
    def windows(self, total: int | None) -> None: ...
    def window_started(self) -> None: ...
    def advance(self, done: int) -> None: ...
    def __call__(self, done: int, total: int | None) -> None: ...


@dataclass(frozen=True)
class Snapshot:
    """The state a display shows."""

    phase: str
    done: int  # output frames done, resumed ones included
    total: int | None
    exact: bool  # the total is known, not estimated
    resumed: int  # output frames done by an earlier run
    elapsed: float  # seconds since the run began
    phase_elapsed: float  # seconds in this phase
    rate: float | None  # output frames per second of this run's work; None until measurable
    eta: float | None  # seconds left at that rate; None while unknown


class RunProgress:
    """Collects a run's events (thread-safe) and computes rate and time left."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.started = clock()
        self._lock = threading.Lock()
        self._phase, self._phase_started = PLANNING, self.started
        self._done = self._resumed = 0
        self._total: int | None = None
        self._exact = False
        self._work_started: float | None = None
        self._done_at_work_start = 0
        self._windows_total: int | None = None
        self._windows_started = 0  # by this run
        self._window_started_at: float | None = None  # the current window's start
        self.listeners: list[Callable[[str], None]] = []  # told of each new phase
        self.checks: list[Callable[[], None]] = []  # called at every window and frame (e.g. a stop request)
        self._finished: float | None = None

    # --- events ---------------------------------------------------------------------------

    def phase(self, name: str) -> None:
        if name not in PHASES:
            raise ValueError(f"unknown phase {name!r}")
        with self._lock:
            if name == self._phase:
                return
            self._phase, self._phase_started = name, self.clock()
        for listener in self.listeners:
            listener(name)

    def resumed(self, frames: int) -> None:
        with self._lock:
            self._resumed = frames
            self._done = max(self._done, frames)

    def total(self, frames: int | None, exact: bool = False) -> None:
        with self._lock:
            if self._exact and not exact:
                return  # an estimate never replaces the exact count
            self._total, self._exact = frames, exact

    def windows(self, total: int | None) -> None:
        with self._lock:
            self._windows_total = total

    def window_started(self) -> None:
        for check in self.checks:
            check()
        first = False
        with self._lock:
            now = self.clock()
            self._windows_started += 1
            self._window_started_at = now
            if self._work_started is None:
                self._work_started, self._done_at_work_start = now, self._done
                first = True
        if first:
            self.phase(FIRST_WINDOW)

    def advance(self, done: int) -> None:
        for check in self.checks:
            check()
        with self._lock:
            if self._work_started is None:  # a driver that does not report windows (e.g. Ray's)
                self._work_started, self._done_at_work_start = self._phase_started, self._resumed
            self._done = done
        if self._phase in (PLANNING, DETECTING, FIRST_WINDOW):
            self.phase(UPSCALING)

    def __call__(self, done: int, total: int | None = None) -> None:
        if total is not None:
            self.total(total)
        self.advance(done)

    # --- what a display shows ---------------------------------------------------------------

    def finish(self) -> float:
        """Stop the clock (the display's last reading and the summary's time are this one);
        returns the seconds since the run began."""
        if self._finished is None:
            self._finished = self.clock()
        self.phase(DONE)
        return self.elapsed()

    def now(self) -> float:
        return self._finished if self._finished is not None else self.clock()

    def elapsed(self) -> float:
        return self.now() - self.started

    def made(self) -> int:
        """Output frames this run's work made (resumed ones excluded)."""
        with self._lock:
            return max(0, self._done - self._done_at_work_start) if self._work_started is not None else 0

    def work_seconds(self) -> float | None:
        """Seconds since the first window started (None before)."""
        with self._lock:
            return None if self._work_started is None else self.now() - self._work_started

    def snapshot(self) -> Snapshot:
        now = self.now()
        with self._lock:
            made = self._done - self._done_at_work_start
            rate = None
            if self._work_started is not None and made > 0 and now > self._work_started:
                rate = made / (now - self._work_started)
            eta = self._eta_by_windows(now)
            if eta is None and rate and self._total is not None:
                eta = max(0, self._total - self._done) / rate
            return Snapshot(self._phase, self._done, self._total, self._exact, self._resumed, now - self.started,
                            now - self._phase_started, rate, eta)


    def _eta_by_windows(self, now: float) -> float | None:
        """Seconds left from the windows left and the mean cost of the complete ones (the lock held);
        None until one window is complete or without a window count."""
        complete = self._windows_started - 1
        if self._windows_total is None or complete < 1 or self._work_started is None:
            return None
        cost = (self._window_started_at - self._work_started) / complete
        # windows of chunks an earlier run made: their share of the frames
        before = round(self._windows_total * self._resumed / self._total) if self._total else 0
        to_start = max(0, self._windows_total - before - self._windows_started)
        return to_start * cost + max(0.0, cost - (now - self._window_started_at))


class NoProgress:
    """Events nobody shows: what the job layer uses when it is given no progress."""

    def phase(self, name: str) -> None: ...
    def resumed(self, frames: int) -> None: ...
    def total(self, frames: int | None, exact: bool = False) -> None: ...
    def windows(self, total: int | None) -> None: ...
    def window_started(self) -> None: ...
    def advance(self, done: int) -> None: ...
    def __call__(self, done: int, total: int | None = None) -> None: ...


class _PlainCallback(NoProgress):
    """A ``progress(done, total)`` function of earlier versions, given the events it understands."""

    def __init__(self, fn: Callable[[int, "int | None"], None]):
        self.fn, self._total = fn, None

    def total(self, frames: int | None, exact: bool = False) -> None:
        self._total = frames

    def advance(self, done: int) -> None:
        self.fn(done, self._total)

    def __call__(self, done: int, total: int | None = None) -> None:
        self.fn(done, total if total is not None else self._total)


def progress_events(progress) -> ProgressEvents:
    """``progress`` as an object with every event: a :class:`RunProgress` (or another object
    with ``phase``) as it is, a plain ``progress(done, total)`` function wrapped, None ignored."""
    if progress is None:
        return NoProgress()
    if hasattr(progress, "window_started"):
        return progress
    return _PlainCallback(progress)
