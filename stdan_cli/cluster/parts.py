"""``stdan upscale --part I/N``: one task of an array job (Slurm, Kubernetes indexed jobs).

Task I of N makes the chunks whose index mod N is I-1 in a work folder all tasks share, and
stops without assembling; a later run without ``--part`` assembles (making any chunk still
missing, e.g. of a task that failed). It is an executor of the one job driver
(:func:`stdan_cli.jobs.run_job`). Tasks run at the same time:

- The plan is complete before any chunk is made: one task at a time plans (one decode of the
  input without the model, under an exclusive lock on the folder's marker file), and tasks
  that waited take its plan instead of decoding the input again. The plan is published with
  an atomic create (``os.link``: exactly one wins); a task that planned anyway (a platform
  without locks) checks that the published plan is of the same job (input, options, weights:
  the comparison a resume makes) and the same plan. The plan is a deterministic function of
  the input and the options, so the tasks of one job always agree; a task of another job
  given the same folder is refused.
- Tasks hold a shared lock on the work folder (a run without ``--part`` holds it exclusively,
  so it waits for no task and no task runs beside it), never remove what they did not
  write, and write every file under a random name of their own before renaming it into place.
- A task run again (a requeued array task) skips its chunks that are done and checked.
- A task decodes its chunks from their first frames (a seek checked against the plan's seek
  table, :func:`stdan_cli.jobs.runner.make_chunks`), not the input up to them.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

from stdan_cli.cluster.part import Part, parse_part  # noqa: F401 (parse_part: the executor's option)
from stdan_cli.errors import JobMismatch
from stdan_cli.jobs import Job, Made, Workspace
from stdan_cli.jobs.driver import NotifyFn, check_planned, check_same_job, resume
from stdan_cli.jobs.runner import ChunkRunner, ProgressFn, decode_and_plan, make_chunks
from stdan_cli.jobs.workspace import MARKER
from stdan_cli.progress import progress_events
from stdan_cli.safe_files import open_lock_file
from stdan_cli.upscalers import Upscaler


@dataclass
class PartExecutor:
    """This task's share of the chunks, made in this process; the output is not assembled."""

    upscaler: Upscaler
    part: Part
    shares_folder: bool = True
    assembles: bool = False
    busy: str = "a stdan run without --part"

    def wants(self, index: int) -> bool:
        return self.part.wants(index)

    def make(self, job: Job, space: Workspace, progress: ProgressFn | None, notify: NotifyFn) -> Made:
        planner, warnings = None, []
        if not job.manifest.planned:
            with planning_turn(space, notify):
                resume(job, space, self, notify)  # the plan of a task that planned while this one waited
                if not job.manifest.planned:
                    planner, warnings = decode_and_plan(job, ChunkRunner(job, space, None, wanted=lambda k: False))
                    check_planned(job, planner)
                    job.manifest.planned = True
                    publish_plan(job, space)
                    space.load_done([c for c in job.manifest.chunks if self.wants(c.index)], notify)
        mine = [c for c in job.manifest.chunks if self.wants(c.index)]
        todo = {c.index for c in mine if c.index not in space.done}
        if not todo:
            return Made(planner, warnings, [], 0, 0)
        # Progress counts this task's share: its frames, of which those its earlier runs made are
        # resumed (other tasks' chunks in the shared folder are neither done here nor speed).
        done = sum(c.outputs for c in mine if c.index in space.done)
        events = progress_events(progress)
        events.total(sum(c.outputs for c in mine), exact=True)
        events.resumed(done)
        everything = sum(c.outputs for c in job.manifest.chunks)
        if job.expected_windows and everything:  # this task's share of the job's windows
            events.windows(round(job.expected_windows * sum(c.outputs for c in mine) / everything))
        runner = ChunkRunner(job, space, self.upscaler, wanted=lambda k: k in todo, progress=events,
                             done_outputs=done)
        warnings += [w for w in make_chunks(job, runner, todo, notify) if w not in warnings]
        return Made(planner, warnings, [], runner.made, runner.outputs - done)


@contextmanager
def planning_turn(space: Workspace, notify: NotifyFn):
    """One task plans at a time: an exclusive lock on the work folder's marker file (every task
    has it open already, and it is a regular file of ours), so that tasks started together
    decode the input to plan once; the others wait for the plan and take it."""
    try:
        import fcntl
    except ImportError:  # no advisory locks on this platform: each task plans
        yield
        return
    with open_lock_file(space.dir / MARKER) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            notify("another task is planning the job; waiting for its plan")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def publish_plan(job: Job, space: Workspace) -> None:
    """Publish the complete plan in the shared folder, or check it against the one another task
    published first (or extend one an interrupted run without --part left)."""
    if space.publish_manifest(job.manifest):
        return
    recorded = space.load_manifest()
    check_same_job(space, recorded, job.manifest)
    ours = job.manifest.chunks
    if recorded.planned and (recorded.chunks, recorded.video) != (ours, job.manifest.video):
        raise JobMismatch(f"the work folder {space.dir} was planned differently by another task; "
                          "pass --restart (without --part) to discard it and start over")
    if not recorded.planned:  # left by an interrupted run without --part: ours extends it
        if recorded.chunks != ours[: len(recorded.chunks)]:
            raise JobMismatch(f"the work folder {space.dir} holds another plan; "
                              "pass --restart (without --part) to discard it and start over")
        space.save_manifest(job.manifest)
