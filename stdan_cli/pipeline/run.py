"""Running an upscale plan: decode (PyAV) -> scenes and temporal windows -> spatial tiles ->
upscaler -> encode (PyAV), never holding more than one window of frames.

Every run is a job (:mod:`stdan_cli.jobs`): planned as chunks of whole windows inside one
scene, each encoded into a work folder beside the output and joined when all are done, so
an interrupted run resumes. Decoding runs ahead of the model and encoding behind it, each in
a background thread. The output is written to a temporary file and renamed only when complete.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from stdan_cli.pipeline.options import UpscaleOptions
from stdan_cli.pipeline.plan import UpscalePlan, plan_upscale
from stdan_cli.upscalers import Upscaler

if TYPE_CHECKING:
    from stdan_cli.jobs import JobOptions


@dataclass
class UpscaleSummary:
    input: Path
    output: Path
    frames_in: int
    frames_out: int
    size_in: tuple[int, int]
    size_out: tuple[int, int]
    rate_out: Fraction
    seconds: float
    tiles: int
    warnings: list[str]
    notices: list[str]


ProgressFn = Callable[[int, "int | None"], None]  # (output frames done, expected total)


def run_plan(
    plan: UpscalePlan,
    upscaler: Upscaler,
    progress: ProgressFn | None = None,
    job: "JobOptions | None" = None,
    notify: Callable[[str], None] | None = None,
) -> UpscaleSummary:
    """Carry out ``plan`` with ``upscaler`` as a job (``job``: scenes, time range, chunks,
    work folder; see :func:`stdan_cli.jobs.run_job`) and rename the finished file to ``plan.output``."""
    from stdan_cli.jobs import JobOptions, run_job  # jobs build on this package

    return run_job(plan, upscaler, job or JobOptions(), progress, notify or (lambda line: None))


def upscale_video(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    upscaler: Upscaler,
    options: UpscaleOptions = UpscaleOptions(),
    progress: ProgressFn | None = None,
    job: "JobOptions | None" = None,
    notify: Callable[[str], None] | None = None,
) -> UpscaleSummary:
    """``stdan upscale`` as a function: plan, then run."""
    plan = plan_upscale(input_path, output_path, upscaler.descriptor, options, upscaler.device)
    return run_plan(plan, upscaler, progress, job, notify)
