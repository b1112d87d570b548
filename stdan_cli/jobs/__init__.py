"""Long videos as resumable jobs: scene-aware chunks in a work folder, assembled at the end.

- :func:`run_job` -- the one driver: prepare, open the work folder (resuming what it holds),
  hand the chunks still to make to an executor, assemble. :class:`InProcess` makes them in
  this process; :mod:`stdan_cli.cluster` has the Ray and ``--part`` executors.
- :func:`prepare_job`, :class:`Job`: what is decided before work starts (the manifest).
- :class:`Workspace`: the work folder, where only what this tool made is read back or removed.

Layer: below the API (:mod:`stdan_cli.api`) and the cluster executors, above the pipeline.
"""

from stdan_cli.errors import JobInterrupted, JobMismatch
from stdan_cli.jobs.driver import Executor, InProcess, Made, run_job
from stdan_cli.jobs.job import CHUNK_SECONDS, Job, JobSummary, prepare_job
from stdan_cli.jobs.manifest import Manifest
from stdan_cli.jobs.plan import ChunkSpec, JobPlanner
from stdan_cli.jobs.workspace import Workspace, default_work_dir

__all__ = [
    "CHUNK_SECONDS", "ChunkSpec", "Executor", "InProcess", "Job", "JobInterrupted", "JobMismatch", "JobPlanner",
    "JobSummary", "Made", "Manifest", "Workspace", "default_work_dir", "prepare_job", "run_job",
]
