"""The Python API of ``stdan upscale``: what the command line calls, importable as it is.

- :func:`upscale_video`: one input to one output (plan, then the job driver).
- :func:`plan_batch`, :func:`check_batch`, :func:`run_batch`: several inputs into a folder,
  each with the same options (the job options too) and one upscaler.

Layer order: cli -> api -> jobs and cluster -> pipeline -> upscalers and video -> model.
"""

from __future__ import annotations

import os
from typing import Callable

from stdan_cli.api.batch import BatchItem, BatchResult, check_batch, is_batch, plan_batch, run_batch
from stdan_cli.jobs import Executor, JobSummary, run_job
from stdan_cli.jobs.runner import ProgressFn
from stdan_cli.pipeline import UpscaleOptions, plan_upscale
from stdan_cli.upscalers import Upscaler


def upscale_video(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    upscaler: Upscaler,
    options: UpscaleOptions = UpscaleOptions(),
    progress: ProgressFn | None = None,
    notify: Callable[[str], None] | None = None,
    executor: Executor | None = None,
) -> JobSummary:
    """``stdan upscale`` as a function: plan (every check first), then run the job."""
    plan = plan_upscale(input_path, output_path, upscaler.descriptor, options, upscaler.device)
    return run_job(plan, upscaler, executor, progress, notify or (lambda line: None))


__all__ = ["BatchItem", "BatchResult", "JobSummary", "check_batch", "is_batch", "plan_batch", "run_batch",
           "upscale_video"]
