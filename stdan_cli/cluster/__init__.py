"""Beyond one process: a job's chunks on a Ray cluster, or split between array-job tasks.

- :func:`ray_cluster`, :func:`plan_workers`: join or start a cluster; how many workers of which kind.
- :class:`RayExecutor`: Ray actors that make a job's chunks (``stdan upscale --ray``), an
  executor of the one job driver (:func:`stdan_cli.jobs.run_job`).
- :class:`PartExecutor`: ``stdan upscale --part I/N``, one task of a Slurm or Kubernetes array
  job, the driver's other executor.
- :func:`evaluate_on_ray`: ``stdan eval --ray``, clips spread over the same kind of actors.

Ray is optional (``pip install ".[ray]"`` in the stdan-cli folder); importing this package does not import it.
"""

from stdan_cli._lazy import lazy_exports

__all__ = [
    "INSTALL", "LOCAL", "Part", "PartExecutor", "RayError", "RayExecutor", "RemoteModel",
    "WorkerLayout", "WorkerSpec", "evaluate_on_ray", "import_ray", "node_cpus", "parse_part", "plan_workers", "ray_cluster",
]

__getattr__ = lazy_exports(__name__, {
    "Part": "part",
    "PartExecutor": "parts",
    "parse_part": "part",
    "evaluate_on_ray": "ray_eval",
    "RayExecutor": "ray_job",
    "RemoteModel": "ray_job",
    "INSTALL": "session",
    "LOCAL": "session",
    "RayError": "session",
    "WorkerLayout": "session",
    "import_ray": "session",
    "node_cpus": "session",
    "plan_workers": "session",
    "ray_cluster": "session",
    "WorkerSpec": "workers",
})
