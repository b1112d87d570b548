"""Long videos as resumable jobs: scene-aware chunks in a work folder, assembled at the end.

- :func:`run_job` -- ``stdan upscale`` (via :func:`stdan_cli.pipeline.run_plan`): plan while
  decoding, make the chunks not yet done, assemble; resumes where a previous run stopped.
- :func:`prepare_job`, :func:`plan_job`, :func:`run_chunk`, :func:`assemble_job` -- the same
  steps called one by one (e.g. chunks made by other processes).
"""

from stdan_cli.errors import JobInterrupted, JobMismatch
from stdan_cli.jobs.job import (
    CHUNK_SECONDS,
    Job,
    JobOptions,
    JobSummary,
    assemble_job,
    check_job_options,
    default_work_dir,
    plan_job,
    prepare_job,
    run_chunk,
    run_job,
)
from stdan_cli.jobs.manifest import Manifest
from stdan_cli.jobs.plan import ChunkSpec, JobPlanner, PlanSettings

__all__ = [
    "CHUNK_SECONDS", "ChunkSpec", "Job", "JobInterrupted", "JobMismatch", "JobOptions", "JobPlanner", "JobSummary", "Manifest",
    "PlanSettings", "assemble_job", "check_job_options", "default_work_dir", "plan_job", "prepare_job", "run_chunk", "run_job",
]
