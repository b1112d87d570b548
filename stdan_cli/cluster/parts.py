"""``stdan upscale --part I/N``: one task of an array job (Slurm, Kubernetes indexed jobs).

Task I of N makes the chunks whose index mod N is I-1 in a work folder all tasks share, and
stops without assembling; a later run without ``--part`` assembles (making any chunk still
missing, e.g. of a task that failed). Tasks run at the same time:

- The plan is complete before any chunk is made: the first task to finish planning (one
  decode of the input without the model) publishes the manifest with an atomic create
  (``os.link``: exactly one wins); the others check that theirs is the same. The plan is a
  deterministic function of the input and the options, so they always agree.
- Tasks hold a shared lock on the work folder (a run without ``--part`` holds it exclusively,
  so it waits for no task and no task runs beside it), never remove what they did not
  write, and write every file under a name of their own before renaming it into place.
- A task run again (a requeued array task) skips its chunks that are done and checked.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from stdan_cli.errors import JobInterrupted, JobMismatch, OptionError
from stdan_cli.jobs import JobOptions, prepare_job
from stdan_cli.jobs.job import ChunkRunner, Job, check_planned, lock_work_folder, make_work_folder, plan_and_run
from stdan_cli.jobs.manifest import (
    MANIFEST,
    TEMP_SUFFIX,
    DoneRecord,
    check_done,
    differences,
    done_records,
    load_manifest,
    refusal_text,
    remove_done,
)
from stdan_cli.pipeline.plan import UpscalePlan
from stdan_cli.upscalers import Upscaler


@dataclass(frozen=True)
class Part:
    index: int  # 1-based
    count: int

    def wants(self, chunk: int) -> bool:
        return chunk % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_part(text: str) -> Part:
    """``I/N`` with 1 <= I <= N (e.g. ``$((SLURM_ARRAY_TASK_ID))/$SLURM_ARRAY_TASK_COUNT``)."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise OptionError(f"--part {text}: use I/N with 1 <= I <= N, e.g. --part 1/4")
    return Part(int(match[1]), int(match[2]))


@dataclass
class PartSummary:
    part: Part
    work_dir: Path
    chunks: int  # in the whole job
    mine: int  # of this part
    made: int  # by this run
    done_before: int  # of this part, done by an earlier run
    frames_out: int  # made by this run
    seconds: float
    warnings: list[str]


class SharedWorkspace:
    """The job's work folder shared with the other tasks (see the module's docstring); the same
    attributes as :class:`stdan_cli.jobs.job.Workspace`, which the chunk runner uses."""

    def __init__(self, job: Job):
        self.job, self.dir = job, job.work_dir
        make_work_folder(self.dir)
        self._lock = lock_work_folder(self.dir, shared=True, busy="a stdan run without --part")
        self.done: dict[int, DoneRecord] = {}
        try:
            recorded = load_manifest(self.dir)
            if recorded is not None:
                changed = differences(recorded, job.manifest)
                if changed:
                    raise JobMismatch(refusal_text(self.dir, changed, "--restart (without --part)"))
                if recorded.planned:
                    job.manifest.chunks, job.manifest.video, job.manifest.planned = (
                        recorded.chunks, recorded.video, True)
        except BaseException:
            self.close()
            raise

    def publish_plan(self) -> tuple[object, list[str]]:
        """Plan the job (one decode, no model) and publish the manifest, or check it against
        the one another task published first."""
        job = self.job
        planner, warnings = plan_and_run(job, ChunkRunner(job, self, None, wanted=lambda k: False, progress=None,
                                                          done_outputs=0))
        check_planned(job, planner)
        job.manifest.planned = True
        target = self.dir / MANIFEST
        temp = self.dir / f"{MANIFEST}.{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}"
        with open(temp, "wb") as f:
            f.write(job.manifest.to_json())
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(temp, target)  # creates the manifest only if there is none
        except FileExistsError:
            recorded = load_manifest(self.dir)
            ours = job.manifest.chunks
            if recorded.planned and (recorded.chunks, recorded.video) != (ours, job.manifest.video):
                raise JobMismatch(f"the work folder {self.dir} was planned differently by another task; "
                                  "pass --restart (without --part) to discard it and start over") from None
            if not recorded.planned:  # left by an interrupted run without --part: ours extends it
                if recorded.chunks != ours[: len(recorded.chunks)]:
                    raise JobMismatch(f"the work folder {self.dir} holds another plan; "
                                      "pass --restart (without --part) to discard it and start over") from None
                os.replace(temp, target)
        finally:
            temp.unlink(missing_ok=True)
        return planner, warnings

    def load_done(self, part: Part, notify: Callable[[str], None]) -> None:
        """This part's chunks done before (each checked: present, size, sha256)."""
        chunks = self.job.manifest.chunks
        for index, record in done_records(self.dir).items():
            if not part.wants(index) or index >= len(chunks):
                continue
            problem = check_done(self.dir, record, chunks[index])
            if problem:
                notify(f"chunk {index} {problem}; it will be made again")
            else:
                self.done[index] = record

    def discard(self, index: int, record: DoneRecord | None = None) -> None:
        remove_done(self.dir, index, record)
        self.done.pop(index, None)

    def close(self, remove: bool = False) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def run_part(plan: UpscalePlan, upscaler: Upscaler, part: Part, job_options: JobOptions = JobOptions(),
             progress: Callable[[int, int | None], None] | None = None,
             notify: Callable[[str], None] = lambda line: None) -> PartSummary:
    """Make this part's chunks of ``plan``'s job in the shared work folder; no assembly."""
    if job_options.restart:
        raise OptionError("--restart cannot be combined with --part (the tasks share the work folder); "
                          "run once with --restart alone, or remove the work folder")
    started = time.perf_counter()
    job = prepare_job(plan, upscaler, job_options)
    space = SharedWorkspace(job)
    runner = None
    warnings: list[str] = []
    try:
        if not job.manifest.planned:
            _, warnings = space.publish_plan()
        space.load_done(part, notify)
        mine = [c for c in job.manifest.chunks if part.wants(c.index)]
        todo = {c.index for c in mine if c.index not in space.done}
        total = sum(c.outputs for c in mine if c.index in todo)
        if todo:
            runner = ChunkRunner(job, space, upscaler, wanted=lambda k: k in todo,
                                 progress=(lambda done, _: progress(done, total)) if progress else None, done_outputs=0)
            _, warnings = plan_and_run(job, runner, stop_after=max(todo))
    except KeyboardInterrupt:
        if runner is not None:
            runner.abort()
        made = runner.made if runner is not None else 0
        raise JobInterrupted(f"interrupted; {made} chunk(s) of part {part} made by this run are kept in "
                             f"{space.dir}; run the same command again to continue") from None
    except BaseException:
        if runner is not None:
            runner.abort()
        raise
    finally:
        space.close()
    return PartSummary(part, space.dir, len(job.manifest.chunks), len(mine), runner.made if runner else 0,
                       len(mine) - len(todo), total, time.perf_counter() - started, warnings)
