"""A pool of Ray actors doing units of work (chunks, clips), with bounded in-flight work and
retries when a worker dies.

Each unit goes to the actor with the fewest units in flight (at most ``depth`` each, so an
actor has its next unit queued while the driver stores the previous result). A unit whose
actor dies (a crash, a lost node, ``ray.kill``) is handed to another, at most
``attempts`` times in all; the dead actor is replaced while replacements last (one per worker).
An error a worker raises for the work itself (a :class:`~stdan_cli.errors.StdanError`) is
raised in the driver as it is, without retrying.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Callable, Iterable

from stdan_cli.cluster.session import RayError
from stdan_cli.errors import StdanError

ATTEMPTS = 3  # tries per unit of work
DEPTH = 2  # units in flight per actor
STARTUP_SECONDS = 900  # for every worker to load the model and receive the input


def unwrap(ray, exc: BaseException) -> BaseException:
    """The error a worker raised (Ray wraps it), or ``exc``."""
    if isinstance(exc, ray.exceptions.RayTaskError):
        cause = getattr(exc, "cause", None)
        if isinstance(cause, BaseException):
            return cause
    return exc


class WorkerPool:
    """``size`` actors of ``cls`` built with ``args`` (object refs are fine), reserving
    ``resources`` (``num_cpus``/``num_gpus``) each."""

    def __init__(self, ray, cls, args: tuple, size: int, resources: dict, attempts: int = ATTEMPTS, depth: int = DEPTH):
        self.ray = ray
        self.remote = ray.remote(cls).options(**resources)
        self.args = args
        self.attempts, self.depth = attempts, depth
        self.replacements = size
        self.actors: list = [self.remote.remote(*args) for _ in range(size)]
        self.load: dict = {a: 0 for a in self.actors}
        self.in_flight: dict = {}  # ref -> (actor, unit)
        self.retried: list = []  # units handed out again after their worker died
        self.lock = threading.Lock()  # guards actors/in_flight for observers in other threads

    def call_all(self, method: str, *args) -> list:
        """``method`` on every actor, waiting for all (errors raised as the worker's own)."""
        refs = [getattr(a, method).remote(*args) for a in self.actors]
        try:
            return self.ray.get(refs, timeout=STARTUP_SECONDS)
        except self.ray.exceptions.GetTimeoutError:
            raise RayError(f"the Ray workers did not start within {STARTUP_SECONDS // 60} minutes: does the "
                           "cluster have the CPUs and GPUs they ask for free? (`ray status` shows it)") from None
        except self.ray.exceptions.RayActorError as exc:
            raise RayError(f"a Ray worker died while starting: {_first_line(exc)}") from None
        except self.ray.exceptions.RayTaskError as exc:
            cause = unwrap(self.ray, exc)
            if isinstance(cause, StdanError):
                raise cause from None
            raise RayError(f"a Ray worker failed while starting: {_first_line(cause)}") from None

    def run(self, units: Iterable, submit: Callable, store: Callable, label: Callable = str) -> None:
        """Hand every unit to an actor (``submit(actor, unit)`` returns an object ref) and give
        each result to ``store(unit, result)`` as it arrives (in completion order)."""
        ray = self.ray
        queue = deque(units)
        tries: dict = {}
        while queue or self.in_flight:
            while queue:
                actor = min(self.actors, key=lambda a: self.load[a], default=None)
                if actor is None:
                    raise RayError("every Ray worker died; see the Ray logs (ray logs / /tmp/ray/session_latest/logs)")
                if self.load[actor] >= self.depth:
                    break
                unit = queue.popleft()
                tries[unit] = tries.get(unit, 0) + 1
                with self.lock:
                    self.in_flight[submit(actor, unit)] = (actor, unit)
                    self.load[actor] += 1
            # a timeout, so that Ctrl-C and SIGTERM reach the driver between waits
            ready, _ = ray.wait(list(self.in_flight), num_returns=1, timeout=0.5)
            for ref in ready:
                with self.lock:
                    actor, unit = self.in_flight.pop(ref)
                    if actor in self.load:
                        self.load[actor] -= 1
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayActorError as exc:
                    self._lost(actor)
                    if tries[unit] >= self.attempts:
                        raise RayError(f"{label(unit)} was lost with its Ray worker {tries[unit]} time(s): "
                                       f"{_first_line(exc)}") from None
                    self.retried.append(unit)
                    queue.appendleft(unit)
                    continue
                except ray.exceptions.RayTaskError as exc:
                    cause = unwrap(ray, exc)
                    if isinstance(cause, (StdanError, KeyboardInterrupt)):
                        raise cause from None
                    raise RayError(f"{label(unit)} failed on a Ray worker: {_first_line(cause)}") from None
                store(unit, result)

    def _lost(self, actor) -> None:
        with self.lock:
            if actor not in self.load:
                return
            self.actors.remove(actor)
            del self.load[actor]
            if self.replacements > 0:
                self.replacements -= 1
                fresh = self.remote.remote(*self.args)
                self.actors.append(fresh)
                self.load[fresh] = 0

    def shutdown(self, graceful: bool = True) -> None:
        """Stop every actor; ``graceful`` lets each remove its temporary folder first (after its
        queued work), otherwise in-flight work is dropped at once."""
        actors, self.actors = list(self.actors), []
        if graceful:
            try:
                self.ray.get([a.close.remote() for a in actors], timeout=60)
            except Exception:  # noqa: BLE001 - a dead or stuck actor is killed below
                pass
        for actor in actors:
            try:
                self.ray.kill(actor)
            except Exception:  # noqa: BLE001 - already gone
                pass


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
