"""Joining or starting a Ray cluster, and how many workers of which kind it gets.

Ray is optional (``pip install ".[ray]"`` in the stdan-cli folder): nothing here imports it before
:func:`import_ray`, which turns its absence into one line naming that command.
"""

from __future__ import annotations

import logging
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from stdan_cli.errors import OptionError, RayError  # noqa: F401 - RayError: imported from here too
from stdan_cli.upscalers.device_names import parse_device

INSTALL = 'pip install "ray>=2.9" (or, in the stdan-cli folder, pip install ".[ray]")'
LOCAL = "local"  # --ray without an address: a cluster of this machine's CPUs and GPUs


def import_ray():
    try:
        import ray
    except ImportError:
        raise RayError(f"--ray needs Ray, which is not installed; install it with: {INSTALL}") from None
    return ray


@contextmanager
def ray_cluster(address: str = LOCAL) -> Iterator[object]:
    """Yield the ``ray`` module connected to ``address``: ``local`` starts a cluster of this
    machine (stopped on exit), ``auto`` or ``ray://HOST:PORT`` joins one (left running). A
    process already connected (an application, a test session) keeps its connection."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    # Workers must import stdan_cli as the driver does: installed on every node of a real cluster;
    # a driver run from a source tree passes its import path on (local workers see the same files).
    env = {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}
    kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=False,
                  runtime_env={"env_vars": env} if env else None)
    ray_logger = logging.getLogger("ray")
    level = ray_logger.level
    if address == LOCAL:  # Ray's start-up notices (e.g. on token authentication) concern clusters users run
        ray_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():  # e.g. Ray Client's timeout warning: the error line below says it
            warnings.simplefilter("ignore")
            if address == LOCAL:
                ray.init(**kwargs)
            else:
                ray.init(address=address, **kwargs)
    except Exception as exc:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        where = "start a local Ray cluster" if address == LOCAL else f"join the Ray cluster at {address}"
        raise RayError(f"cannot {where}: {first}") from None
    finally:
        ray_logger.setLevel(level)
    try:
        yield ray
    finally:
        ray.shutdown()


@dataclass(frozen=True)
class WorkerLayout:
    """How many actors, on what device, with which resources each."""

    workers: int
    device: str  # what each actor passes to build_upscaler: "cuda" (its own GPU), "cpu" or "mps"
    threads: int  # torch threads per actor
    num_cpus: float  # Ray resources each actor reserves
    num_gpus: float


def node_cpus(ray) -> int:
    """CPUs of the cluster's largest live node (an actor cannot span nodes)."""
    return max((int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n.get("Alive")), default=1)


def plan_workers(resources: dict, device: str = "auto", workers: int | None = None,
                 threads: int | None = None, largest_node: int | None = None) -> WorkerLayout:
    """The actors for a cluster with ``resources`` (``ray.cluster_resources()``) whose largest
    node has ``largest_node`` CPUs (default: all of them on one node).

    GPUs (``--device auto`` when the cluster has any, or ``cuda``): one actor per GPU, each
    owning it (``num_gpus=1``) with one CPU for decoding and encoding; ``--ray-workers`` may ask
    for fewer. CPUs: ``workers`` actors (default 1) sharing the cluster's cores, ``threads``
    each (default: the cores divided between them, at least 1, at most one node's)."""
    if workers is not None and workers < 1:
        raise OptionError("--ray-workers must be at least 1")
    if threads is not None and threads < 1:
        raise OptionError("--threads must be at least 1")
    kind = parse_device(device).name  # the one --device parser: a mistyped device is refused in its words
    gpus = int(resources.get("GPU", 0))
    cpus = max(1, int(resources.get("CPU", 1)))
    if kind == "auto":
        kind = "cuda" if gpus else "cpu"
    if kind == "cuda":
        if not gpus:
            raise RayError("--device cuda: the Ray cluster has no GPUs; use --device cpu or auto")
        n = min(workers or gpus, gpus)
        return WorkerLayout(n, "cuda", threads or 1, 1, 1)
    if kind not in ("cpu", "mps"):
        raise OptionError(f"unsupported device '{device}' with --ray; use auto, cpu or cuda")
    n = workers or 1
    largest = largest_node or cpus
    each = threads or min(largest, max(1, cpus // n))
    if n * each > cpus or each > largest:
        raise OptionError(f"{n} Ray worker(s) x {each} thread(s) need {n * each} CPUs, at most {largest} on one "
                          f"node; the cluster has {cpus}, at most {largest} on one node")
    return WorkerLayout(n, kind, each, each, 0)
