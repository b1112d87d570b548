"""Beyond one process: a job's chunks on a Ray cluster, or split between array-job tasks.

- :func:`ray_cluster`, :func:`plan_workers`: join or start a cluster; how many workers of which kind.
- :class:`RayUpscaler`: Ray actors that make a job's chunks (``stdan upscale --ray``), an
  executor of the one job driver (:func:`stdan_cli.jobs.run_job`).
- :class:`PartExecutor`: ``stdan upscale --part I/N``, one task of a Slurm or Kubernetes array
  job, the driver's other executor.
- :func:`evaluate_on_ray`: ``stdan eval --ray``, clips spread over the same kind of actors.

Ray is optional (``pip install "stdan-cli[ray]"``); importing this package does not import it.
"""

from stdan_cli.cluster.parts import Part, PartExecutor, parse_part
from stdan_cli.cluster.ray_eval import evaluate_on_ray
from stdan_cli.cluster.ray_job import RayUpscaler, RemoteUpscaler
from stdan_cli.cluster.session import (
    INSTALL,
    LOCAL,
    RayError,
    WorkerLayout,
    import_ray,
    node_cpus,
    plan_workers,
    ray_cluster,
)
from stdan_cli.cluster.workers import WorkerSpec

__all__ = [
    "INSTALL", "LOCAL", "Part", "PartExecutor", "RayError", "RayUpscaler", "RemoteUpscaler",
    "WorkerLayout", "WorkerSpec", "evaluate_on_ray", "import_ray", "node_cpus", "parse_part", "plan_workers", "ray_cluster",
]
