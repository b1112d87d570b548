"""Decode and encode beside the model: a prefetching iterator and a serial worker thread,
both with bounded queues (memory stays bounded) and errors re-raised in the caller."""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
_DONE = object()


def prefetch(items: Iterable[T], depth: int = 8) -> Iterator[T]:
    """Iterate ``items`` in a background thread, ``depth`` items ahead."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def run() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((_DONE, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put((_DONE, exc))

    thread = threading.Thread(target=run, name="stdan-decode", daemon=True)
    thread.start()
    try:
        while True:
            item, error = q.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


class SerialWorker:
    """Runs submitted calls one after another in a background thread, in order."""

    def __init__(self, depth: int = 8, name: str = "stdan-encode"):
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._q.get()
            if job is None:
                return
            if self._error is None:
                try:
                    job()
                except BaseException as exc:  # noqa: BLE001 - re-raised by submit/finish
                    self._error = exc

    def submit(self, fn: Callable, *args, **kwargs) -> None:
        if self._error is not None:
            raise self._error
        self._q.put(lambda: fn(*args, **kwargs))

    def finish(self) -> None:
        """Wait for every submitted call; re-raise the first error."""
        self._q.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def cancel(self) -> None:
        """Drop pending calls and wait for the running one to end."""
        try:
            while True:
                self._q.get_nowait()
        except queue.Empty:
            pass
        self._error = self._error or RuntimeError("cancelled")
        self._q.put(None)
        self._thread.join(timeout=30)
