"""What ``upscale`` and ``eval`` share to run beyond one process: ``--ray``, ``--ray-workers``,
``--shared-input`` and ``--part``, checked together, and the Ray workers they ask for."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import click

from stdan_cli.cluster.session import LOCAL
from stdan_cli.errors import OptionError
from stdan_cli.upscalers import UPSCALERS

if TYPE_CHECKING:
    from stdan_cli.cluster.parts import Part

RAY_HELP = ("Run the model on Ray workers: without ADDRESS a Ray cluster of this machine's CPUs and GPUs "
            "is started (and stopped at the end); 'auto' joins the cluster this machine belongs to "
            "('ray start'), ray://HOST:PORT one elsewhere. ADDRESS is optional, so give --ray after the "
            "command's arguments, or as --ray=ADDRESS. Needs Ray: pip install \"ray>=2.9\". Default: no Ray.")
WORKERS_HELP = ("Ray workers (actors; each loads the model once). Default: one per GPU of the cluster, "
                "each owning its GPU; on CPUs 1, and N workers share the cores (--threads each, default "
                "the cluster's CPUs divided by N).")


def ray_option(fn: Callable) -> Callable:
    fn = click.option("--ray-workers", type=int, default=None, metavar="N", help=WORKERS_HELP)(fn)
    return click.option("--ray", "ray_address", is_flag=False, flag_value=LOCAL, default=None,
                        metavar="[ADDRESS]", help=RAY_HELP)(fn)


def cluster_options(fn: Callable) -> Callable:
    """--ray/--ray-workers/--shared-input/--part of ``upscale`` (passed as ray_address,
    ray_workers, shared_input, part)."""
    fn = click.option("--part", default=None, metavar="I/N",
                      help="Make only the chunks whose index mod N is I-1 (1-based I: the I-th, (I+N)-th... chunk) in the "
                           "work folder, shared with the other parts, and stop without assembling: one task of "
                           "a Slurm or Kubernetes array job (all tasks must see the work folder). The same "
                           "command without --part then assembles, making any chunk still missing. Default: "
                           "all chunks, then assemble.")(fn)
    fn = click.option("--shared-input", is_flag=True,
                      help="With --ray: every node reads INPUT at the same path (a shared filesystem), "
                           "instead of receiving a copy through Ray's object store. Default: a copy.")(fn)
    return ray_option(fn)


@dataclass(frozen=True)
class Placement:
    ray: str | None  # address, LOCAL, or None: no Ray
    workers: int | None
    shared_input: bool
    part: "Part | None"

    @classmethod
    def of(cls, ray_address, ray_workers, shared_input=False, part=None) -> "Placement":
        if ray_address is None and (ray_workers is not None or shared_input):
            raise OptionError(f"{'--ray-workers' if ray_workers is not None else '--shared-input'} needs --ray")
        from stdan_cli.cluster.parts import parse_part  # the job layer: not for --help

        parsed = parse_part(part) if part is not None else None
        if parsed is not None and ray_address is not None:
            raise OptionError("--part and --ray are two ways to share out the work; use one")
        return cls(ray_address, ray_workers, shared_input, parsed)


def weights_file(model_name: str, weights) -> Path | None:
    """The checkpoint the workers load (resolved and checked here, before Ray starts), None for
    an upscaler without weights. ``weights``: what :func:`~stdan_cli.cli.common.weights_for` gave."""
    if not UPSCALERS[model_name].needs_weights:
        return None
    from stdan_cli.weights import resolve_weights

    return resolve_weights(weights)


@contextmanager
def ray_workers_for(where: Placement, input_path, model_name, weights, device, precision,
                    threads, backend: str = "torch") -> Iterator[object]:
    """A connected :class:`~stdan_cli.cluster.RayUpscaler` for ``upscale --ray``."""
    from stdan_cli.cluster import RayUpscaler, WorkerSpec, node_cpus, plan_workers, ray_cluster

    path = weights_file(model_name, weights)
    with ray_cluster(where.ray) as ray:
        layout = plan_workers(ray.cluster_resources(), device, where.workers, threads, node_cpus(ray))
        spec = WorkerSpec(model_name, layout.device, precision, layout.threads, backend)
        with RayUpscaler(ray, input_path, spec, layout, path, where.shared_input) as workers:
            yield workers
