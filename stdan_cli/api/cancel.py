"""A cancel token: how the caller of a run asks it to stop, apart from how the run reports progress."""

from __future__ import annotations

import threading


class CancelToken:
    """Set by the caller (a signal handler, another thread, a GUI's stop button); the run checks
    it at every window and frame and stops the way Ctrl-C does (completed chunks are kept)."""

    def __init__(self) -> None:
        self._requested = threading.Event()

    def cancel(self) -> None:
        self._requested.set()

    @property
    def cancelled(self) -> bool:
        return self._requested.is_set()

    def check(self) -> None:
        """Raise :class:`KeyboardInterrupt` once :meth:`cancel` was called."""
        if self._requested.is_set():
            raise KeyboardInterrupt
