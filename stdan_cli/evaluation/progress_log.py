"""Progress as plain lines at a steady interval, for runs whose output goes to a log file
(``nohup``, Slurm, a CI job), where a live progress bar prints nothing until the end.

A background thread writes one line every ``interval`` seconds, whatever the clips take (a Vid4
clip can take many minutes); the evaluation feeds it frames and clips as they are scored. The
rate and the ETA come from the frames scored so far, counted from when the log started (after
the model loaded).
"""

from __future__ import annotations

import math
import sys
import threading
import time
from datetime import datetime
from typing import Callable, TextIO


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class ProgressLog:
    """Use as a context manager around the run; pass :meth:`clip_done` as ``progress`` and
    :meth:`frames_done` as ``frame_progress`` to :func:`~stdan_cli.evaluation.evaluate`."""

    def __init__(self, label: str, clips: int, frames: int, interval: float = 60.0,
                 stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic):
        if not interval > 0:
            raise ValueError("the progress interval must be positive")
        self.label, self.clips, self.frames, self.interval = label, clips, frames, interval
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.clips_done = self.frames_done_count = 0
        self.last = ""
        self._counted_clip = 0  # frames reported by frame_progress for the clip in progress
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start = clock()

    def frames_done(self, n: int) -> None:
        with self._lock:
            self.frames_done_count += n
            self._counted_clip += n

    def clip_done(self, done: int, total: int, clip) -> None:
        """``progress`` callback: a clip finished (its frames count if frames_done was not told)."""
        with self._lock:
            self.frames_done_count += len(clip.frames) - self._counted_clip
            self._counted_clip = 0
            self.clips_done, self.clips = done, total
            psnr_y = clip.mean("psnr_y")
            self.last = f"{clip.name}: {psnr_y:.2f} dB Y" if math.isfinite(psnr_y) else f"{clip.name}: exact"

    def line(self) -> str:
        """'[12:00:00] eval vimeo-fast: 3 of 1225 clips, 21 of 8575 frames (0.2%), 0.91 frames/s,
        elapsed 0:00:23, ETA 2:36:10; last 00001/0625: 31.24 dB Y'."""
        with self._lock:
            elapsed = self.clock() - self._start
            done, total = self.frames_done_count, self.frames
            rate = done / elapsed if elapsed > 0 else math.nan
            eta = (total - done) / rate if done and rate > 0 else math.inf
            pct = 100 * done / total if total else 100.0
            text = (f"[{datetime.now():%H:%M:%S}] {self.label}: {self.clips_done} of {self.clips} clips, "
                    f"{done} of {total} frames ({pct:.1f}%), "
                    + (f"{rate:.2f} frames/s, " if done else "")
                    + f"elapsed {_duration(elapsed)}, ETA {_duration(eta) if done else 'after the first frames'}")
            return text + (f"; last {self.last}" if self.last else "")

    def emit(self) -> None:
        self.stream.write(self.line() + "\n")
        self.stream.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.emit()

    def __enter__(self) -> ProgressLog:
        self._start = self.clock()
        self.stream.write(f"[{datetime.now():%H:%M:%S}] {self.label}: starting, {self.clips} clips, "
                          f"{self.frames} frames; a line every {self.interval:g} s\n")
        self.stream.flush()
        self._thread = threading.Thread(target=self._run, name="stdan-progress-log", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if exc[0] is None:
            self.emit()
