"""Temporal windows over a stream of frames.

Output positions are counted in half input frames: output ``2k`` is input frame ``k``
upscaled, output ``2k + 1`` lies between frames ``k`` and ``k + 1``. A window of ``W``
frames starting at frame ``a`` produces outputs ``2a .. 2a + 2W - 2``; outputs an earlier
window already produced are skipped (the official scheme keeps the earlier window's version).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

from stdan_cli.errors import OptionError

T = TypeVar("T")


@dataclass(frozen=True)
class Window:
    start: int  # first input frame
    inputs: tuple[int, ...]  # input frame indices fed to the model (short videos repeat the last)
    skip: int  # leading outputs of this window that an earlier window already produced
    emit: int  # outputs to keep after the skipped ones

    @property
    def first_output(self) -> int:
        """Position (in half frames) of the first emitted output."""
        return 2 * self.start + self.skip


def check_window(window: int, stride: int) -> None:
    if window < 2:
        raise OptionError(f"--window must be at least 2 frames (got {window})")
    if not 1 <= stride <= window - 1:
        raise OptionError(f"--stride must be between 1 and window-1 = {window - 1} (got {stride}); a larger stride leaves gaps")


class WindowScheduler(Generic[T]):
    """Turns a stream of frames into model windows, holding at most ``window`` frames.

    ``push(frame)`` returns the windows that became ready (with their frames);
    ``finish()`` returns the last, end-aligned (or, for short videos, padded) window.
    """

    def __init__(self, window: int = 4, stride: int = 3):
        check_window(window, stride)
        self.window, self.stride = window, stride
        self.buffer: deque[tuple[int, T]] = deque(maxlen=window)
        self.count = 0  # frames seen
        self.next_start = 0
        self.emitted = 0  # outputs produced so far (positions < emitted are done)

    @classmethod
    def after(cls, frames: int, window: int = 4, stride: int = 3) -> "WindowScheduler":
        """The scheduler as it is after ``frames`` pushes whose windows were taken, without
        the frames: the buffer holds None for them, so only windows starting at ``frames`` or
        later are whole (see :meth:`push`: the same state, computed in one step)."""
        sched = cls(window, stride)
        made = 0 if frames < window else (frames - window) // stride + 1  # windows push made
        sched.count, sched.next_start = frames, made * stride
        sched.emitted = 2 * ((made - 1) * stride + window - 1) + 1 if made else 0
        sched.buffer.extend((i, None) for i in range(max(0, frames - window), frames))
        return sched

    def _make(self, start: int, n_real: int) -> tuple[Window, list[T]]:
        frames = {i: f for i, f in self.buffer}
        idx = [min(start + j, n_real - 1) for j in range(self.window)]
        last_output = 2 * (min(start + self.window, n_real) - 1)  # inclusive
        skip = self.emitted - 2 * start
        win = Window(start=start, inputs=tuple(idx), skip=skip, emit=last_output - self.emitted + 1)
        self.emitted = last_output + 1
        return win, [frames[i] for i in idx]

    def push(self, frame: T) -> list[tuple[Window, list[T]]]:
        self.buffer.append((self.count, frame))
        self.count += 1
        ready = []
        if self.count == self.next_start + self.window:
            ready.append(self._make(self.next_start, self.count))
            self.next_start += self.stride
        return ready

    def finish(self) -> list[tuple[Window, list[T]]]:
        n = self.count
        if n == 0 or self.emitted >= 2 * n - 1:
            return []
        return [self._make(max(0, n - self.window), n)]



def window_count(frames: int, window: int = 4, stride: int = 3) -> int:
    """How many windows :class:`WindowScheduler` makes of ``frames`` frames (one scene): one per
    ``stride`` frames while a whole window fits, and one end-aligned window for a remainder."""
    if frames <= 0:
        return 0
    if frames <= window:
        return 1
    whole = (frames - window) // stride + 1
    return whole + ((whole - 1) * stride + window < frames)
