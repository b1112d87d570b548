"""The one job driver: prepare, open the work folder, resume, hand the chunks still to make to
an executor, check, assemble, clean up; errors and interrupts handled in one place.

An executor says how chunks get made (:class:`InProcess` here; Ray actors and ``--part``
array tasks in :mod:`stdan_cli.cluster`), whether it shares the work folder with other
processes, and whether the job is assembled at the end. Everything else is the same for all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import av

from stdan_cli.errors import InputError, JobInterrupted, JobMismatch, OptionError, OutputError, StdanError
from stdan_cli.jobs.assemble import CopyRange, assemble
from stdan_cli.jobs.job import Job, JobSummary, prepare_job
from stdan_cli.jobs.manifest import Manifest, differences, refusal_text
from stdan_cli.jobs.plan import JobPlanner
from stdan_cli.jobs.runner import ChunkRunner, ProgressFn, decode_and_plan, make_chunks
from stdan_cli.jobs.workspace import Workspace
from stdan_cli.pipeline.plan import UpscalePlan
from stdan_cli.progress import ASSEMBLING, PLANNING, progress_events
from stdan_cli.upscalers import Upscaler

NotifyFn = Callable[[str], None]


@dataclass
class Made:
    """What an executor reports: the planner (None when the plan was complete before: nothing
    was decoded, or only chunks from their first frames), the decoder's warnings, notices,
    chunks and frames made."""

    planner: JobPlanner | None
    warnings: list[str]
    notices: list[str]
    made: int
    frames_out: int  # output frames made by this run


class Executor(Protocol):
    shares_folder: bool  # other processes use the work folder at the same time (a shared lock)
    assembles: bool  # the driver assembles the output once every chunk is done
    busy: str  # who holds the work folder when it cannot be locked

    def wants(self, index: int) -> bool:
        """Whether this executor makes chunk ``index`` (when it is not done)."""

    def make(self, job: Job, space: Workspace, progress: ProgressFn | None, notify: NotifyFn) -> Made:
        """Make the wanted chunks not yet in ``space.done``; the job's plan is complete afterwards."""


@dataclass
class InProcess:
    """Chunks made in this process while the input is decoded once (planning as it goes); when
    the plan is complete already, only the chunks not done are decoded, each from its first frame."""

    upscaler: Upscaler
    shares_folder: bool = False
    assembles: bool = True
    busy: str = "another stdan run"

    def wants(self, index: int) -> bool:
        return True

    def make(self, job: Job, space: Workspace, progress: ProgressFn | None, notify: NotifyFn) -> Made:
        done = space.done_outputs()
        runner = ChunkRunner(job, space, self.upscaler, self.wants, progress, done_outputs=done)
        if job.manifest.planned and job.manifest.seek is not None:  # e.g. the run that assembles --part tasks' chunks
            todo = [c.index for c in job.manifest.chunks if c.index not in space.done]
            warnings = make_chunks(job, runner, todo, notify) if todo else []
            return Made(None, warnings, runner.notices + list(self.upscaler.notices), runner.made,
                        runner.outputs - done)
        planner, warnings = decode_and_plan(job, runner)
        return Made(planner, warnings, runner.notices + list(self.upscaler.notices), runner.made,
                    runner.outputs - done)


def run_job(plan: UpscalePlan, upscaler: Upscaler, executor: Executor | None = None,
            progress: ProgressFn | None = None, notify: NotifyFn = lambda line: None) -> JobSummary:
    """Carry out ``plan`` as a resumable job with ``executor`` (default: this process); ``upscaler``
    describes the model (name, precision, weights) for the manifest and the plan."""
    started = time.perf_counter()
    events = progress_events(progress)
    events.phase(PLANNING)
    executor = executor or InProcess(upscaler)
    if executor.shares_folder and plan.options.restart:
        raise OptionError("--restart cannot be combined with --part (the tasks share the work folder); "
                          "run once with --restart alone, or remove the work folder")
    job = prepare_job(plan, upscaler)
    local_input = [Path(job.input)] if Path(job.input).is_file() else []
    space = Workspace(job.work_dir, job.chunk_format.extension, shared=executor.shares_folder, busy=executor.busy,
                      apart=[job.output, *local_input])
    try:
        resume(job, space, executor, notify)
    except BaseException:
        space.close(remove=space.fresh)
        raise
    resumed = len(space.done)
    if resumed:
        notify(f"resuming: {resumed} chunk(s) already done in {space.dir}")
    events.total(job.expected)
    events.windows(job.expected_windows)
    events.resumed(space.done_outputs())
    try:
        made = executor.make(job, space, events, notify)
        job.manifest.planned = True
        if not space.shared:
            space.save_manifest(job.manifest)
        if made.planner is not None:
            check_planned(job, made.planner)
        events.total(sum(c.outputs for c in job.manifest.chunks), exact=True)
        if executor.assembles:
            events.phase(ASSEMBLING)
        notices = assemble_chunks(job, space) if executor.assembles else []
    except BaseException as exc:
        close_after_error(space, exc)
        raise
    space.close(remove=executor.assembles)
    return job_summary(job, made, notices + made.notices, started, resumed)


def resume(job: Job, space: Workspace, executor: Executor, notify: NotifyFn) -> None:
    """Take over what the work folder holds for this job: its plan so far and the chunks done
    (each checked); refuse a folder of another job. ``--restart`` first discards it."""
    if job.options.restart:
        space.reset()
    recorded = space.load_manifest()
    if recorded is not None:
        check_same_job(space, recorded, job.manifest)
        job.manifest.chunks, job.manifest.planned = recorded.chunks, recorded.planned
        job.manifest.video, job.manifest.seek = recorded.video, recorded.seek  # what a complete plan found
    if not space.shared:
        space.save_manifest(job.manifest)
    space.load_done([c for c in job.manifest.chunks if executor.wants(c.index)], notify)


def check_same_job(space: Workspace, recorded: Manifest, wanted: Manifest) -> None:
    """Refuse to take over the work folder's job ``recorded`` unless it is ``wanted`` in its
    whole identity: input, options, model, weights, version (:func:`differences`). A resume
    and a ``--part`` task that finds another task's plan both ask this."""
    changed = differences(recorded, wanted)
    if changed:
        restart = "--restart (without --part)" if space.shared else "--restart"
        raise JobMismatch(refusal_text(space.dir, changed, restart))


def assemble_chunks(job: Job, space: Workspace) -> list[str]:
    """Join the chunks done in ``space`` into the output (see :func:`stdan_cli.jobs.assemble.assemble`)."""
    missing = [c.index for c in job.manifest.chunks if c.index not in space.done]
    if missing:
        raise OutputError(f"the job is not complete: chunk(s) {', '.join(map(str, missing))} are missing")
    facts = job.manifest.video
    start = facts.start_seconds
    span = CopyRange(float("-inf") if start is None else start, facts.end_seconds, facts.shift)
    tb = job.chunk_format.time_base
    files = [space.chunk_path(c.index) for c in job.manifest.chunks]
    times = [(c.start * tb, c.end * tb) for c in job.manifest.chunks]
    return assemble(files, times, job.output, job.input, job.chunk_format.container,
                    facts.keep_audio, span, job.plan.mode.duration_scale, job.options.overwrite,
                    job.chunk_format.rate)


def check_planned(job: Job, planner: JobPlanner) -> None:
    """Raise the user's error when the complete plan has no chunk (nothing to make)."""
    if not job.manifest.chunks:
        if job.options.has_range and planner.frames_seen:
            raise OptionError(f"no frame of {job.input} lies in the range --start/--end; nothing was written")
        raise InputError(f"no frame of {job.input} could be decoded; nothing was written")


def close_after_error(space: Workspace, exc: BaseException) -> None:
    """Close the work folder of a job that ``exc`` stopped: its files are kept when chunks are
    done, removed otherwise (a shared folder is left as it is). Raises the error a user should
    see instead (saying what was kept), or returns when ``exc`` itself should be raised."""
    kept = space.kept_chunks()
    space.close(remove=kept == 0 and not space.shared)
    if kept:
        hint = f"{kept} chunk(s) done are kept in {space.dir}; run the same command again to continue"
    else:
        hint = "nothing was written"
    if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, JobInterrupted):
        raise JobInterrupted(f"interrupted; {hint}") from None
    if isinstance(exc, StdanError) and kept and not isinstance(exc, (JobMismatch, JobInterrupted)):
        raise type(exc)(f"{exc} ({hint})") from None
    if isinstance(exc, (OSError, av.error.FFmpegError)) and kept:  # e.g. a full disk
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        where = getattr(exc, "filename", None)
        raise OutputError(f"{reason}{f': {where}' if where else ''} ({hint})") from exc


def job_summary(job: Job, made: Made, notices: list[str], started: float, resumed: int) -> JobSummary:
    """What a finished job reports (``started``: its ``time.perf_counter()`` at the start)."""
    plan, fmt, info = job.plan, job.chunk_format, job.plan.info
    specs = job.manifest.chunks
    return JobSummary(
        input=plan.input, output=plan.output, frames_in=_frames_in(job, made),
        frames_out=sum(c.outputs for c in specs), size_in=(info.width, info.height), size_out=(fmt.width, fmt.height),
        rate_out=fmt.rate, seconds=time.perf_counter() - started, tiles=len(plan.tiles), warnings=made.warnings,
        notices=list(fmt.encoding.notices) + notices, scenes=len({c.scene for c in specs}), chunks=len(specs),
        resumed=resumed, made=made.made, frames_made=made.frames_out,
        cut_frames=[c.first_frame for a, c in zip(specs, specs[1:]) if c.scene != a.scene],
    )


def _frames_in(job: Job, made: Made) -> int:
    """Input frames in the range: as the planner counted them, or as the complete plan records them."""
    if made.planner is not None:
        return made.planner.range_frames
    return job.manifest.seek.range_frames if job.manifest.seek is not None else 0
