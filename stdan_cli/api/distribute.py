"""How a run shares out its work: in this process, on Ray workers (``--ray``, ``--ray-workers``,
``--shared-input``) or as one task of an array job (``--part I/N``); checked together, and the
one place where Ray workers are set up for ``upscale`` and ``eval``."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

from stdan_cli.api.upscaler import ModelChoice
from stdan_cli.errors import OptionError

if TYPE_CHECKING:
    from pathlib import Path

    from stdan_cli.cluster.part import Part
    from stdan_cli.cluster.session import WorkerLayout
    from stdan_cli.cluster.workers import WorkerSpec


@dataclass(frozen=True)
class Distribution:
    """Where a run's work is done: ``ray`` (an address, LOCAL, or None: no Ray) or ``part``."""

    ray: str | None = None
    workers: int | None = None
    shared_input: bool = False
    part: "Part | None" = None

    @classmethod
    def of(cls, ray_address=None, ray_workers=None, shared_input=False, part=None) -> "Distribution":
        """From the options as given (``part``: the text ``I/N``); one line for a combination that
        makes no sense."""
        if ray_address is None and (ray_workers is not None or shared_input):
            raise OptionError(f"{'--ray-workers' if ray_workers is not None else '--shared-input'} needs --ray")
        from stdan_cli.cluster.part import parse_part

        parsed = parse_part(part) if part is not None else None
        if parsed is not None and ray_address is not None:
            raise OptionError("--part and --ray are two ways to share out the work; use one")
        return cls(ray_address, ray_workers, shared_input, parsed)


@dataclass(frozen=True)
class RayWorkers:
    """A joined (or started) Ray cluster and the workers planned on it for one model."""

    ray: object  # the ray module, connected
    layout: "WorkerLayout"
    spec: "WorkerSpec"
    weights: "Path | None"  # the checkpoint file the workers load


@contextmanager
def ray_workers(address: str, workers: int | None, model: ModelChoice, checkpoint: str | None) -> Iterator[RayWorkers]:
    """Join or start the Ray cluster at ``address`` and plan ``workers`` workers of ``model``
    (``checkpoint``: what :meth:`ModelChoice.checkpoint` gave); the cluster is left (or
    stopped, when started here) on exit."""
    from stdan_cli.cluster import WorkerSpec, node_cpus, plan_workers, ray_cluster

    path = model.checkpoint_file(checkpoint)
    with ray_cluster(address) as ray:
        layout = plan_workers(ray.cluster_resources(), model.device, workers, model.threads, node_cpus(ray))
        spec = WorkerSpec(model.name, layout.device, model.precision, layout.threads, model.backend)
        yield RayWorkers(ray, layout, spec, path)
