"""One decode of the input: frames are planned into tasks as they arrive, and the tasks of
the chunks wanted are carried out (model windows encoded into chunk files).

This is the in-process executor's work and also how every other executor plans (with no
chunk wanted, the model never runs) and how a Ray worker makes the chunk it was handed.
"""

from __future__ import annotations

from typing import Callable

from stdan_cli.jobs.chunk import ChunkEncoder
from stdan_cli.jobs.job import Job
from stdan_cli.jobs.manifest import VideoFacts
from stdan_cli.jobs.plan import ChunkEnd, JobPlanner, RepeatTask, Task, WindowTask
from stdan_cli.jobs.workspace import Workspace
from stdan_cli.pipeline.background import prefetch
from stdan_cli.pipeline.window_frames import WindowUpscaler
from stdan_cli.progress import progress_events
from stdan_cli.upscalers import Upscaler
from stdan_cli.video.decode import VideoReader

ProgressFn = Callable[[int, "int | None"], None]  # (output frames done, expected total)


class ChunkRunner:
    """Carries out planned tasks: chunks already done are skipped, wanted ones are made."""

    def __init__(self, job: Job, space: Workspace, upscaler: Upscaler | None, wanted: Callable[[int], bool],
                 progress: ProgressFn | None = None, done_outputs: int = 0):
        self.job, self.space, self.wanted = job, space, wanted
        self.window_upscaler = WindowUpscaler(job.plan, upscaler) if upscaler is not None else None
        self.progress = progress_events(progress)
        self.outputs = done_outputs
        self.encoder: ChunkEncoder | None = None
        self.current: int | None = None
        self.made = 0

    @property
    def notices(self) -> list[str]:
        return self.window_upscaler.notices if self.window_upscaler is not None else []

    def handle(self, task: Task) -> None:
        if isinstance(task, WindowTask):
            if task.chunk != self.current:
                self._start(task.chunk)
            if self.encoder is not None:
                self.progress.window_started()
                outputs = self.window_upscaler(task.frames, task.skip, task.window.inputs)
                for j, pts in task.keep:
                    self.encoder.write(outputs[j], pts)
                    self._advance(1)
        elif isinstance(task, RepeatTask):
            if self.encoder is not None:
                self.encoder.repeat(task.pts)
                self._advance(1)
        elif isinstance(task, ChunkEnd):
            self._end(task)

    def _start(self, chunk: int) -> None:
        self.current = chunk
        if chunk not in self.space.done and self.wanted(chunk):
            self.encoder = ChunkEncoder(self.space, chunk, self.job.chunk_format)

    def _end(self, end: ChunkEnd) -> None:
        spec = end.spec
        self.job.manifest.record(spec)
        if self.encoder is not None:
            if not self.space.shared:  # a shared folder's manifest was published complete before any chunk
                self.space.save_manifest(self.job.manifest)  # the chunk is in the table before it is done
            self.encoder.finish(spec, end.hold)
            self.encoder = None
            self.made += 1
        self.current = None

    def _advance(self, n: int) -> None:
        self.outputs += n
        self.progress(self.outputs, self.job.expected)

    def abort(self) -> None:
        if self.encoder is not None:
            self.encoder.abort()
            self.encoder = None


def decode_and_plan(job: Job, runner: ChunkRunner, stop_after: int | None = None) -> tuple[JobPlanner, list[str]]:
    """Decode the input once, plan as frames arrive and hand every task to ``runner`` (stop
    once chunk ``stop_after`` is planned, if given). On any error or interrupt the runner's
    unfinished chunk is discarded."""
    try:
        with VideoReader(job.input, job.options.deinterlace, job.options.video_filter) as reader:
            planner = JobPlanner(job.options, job.chunk_frames, job.cut_source(), job.plan.info.time_base)
            for frame in prefetch(reader.frames()):
                for task in planner.push(frame):
                    runner.handle(task)
                if planner.complete or (stop_after is not None and planner.chunks > stop_after + 1):
                    break
            else:
                for task in planner.finish():
                    runner.handle(task)
            job.manifest.video = _copy_facts(job, planner)
            return planner, list(reader.warnings)
    except BaseException:
        runner.abort()
        raise


def _copy_facts(job: Job, planner: JobPlanner) -> VideoFacts:
    """What the assembly needs to copy the input's other streams: the range in the input's seconds."""
    tb = job.plan.info.time_base
    options = job.options
    start = end = None
    if planner.first_in_range is not None:
        start = float(planner.origin_pts * tb) if options.has_range else None
        end = (float(planner.pts0 * tb) + options.end) if options.end is not None else None
    return VideoFacts(job.plan.mode.keeps_audio, options.has_range, start, end)


def make_one_chunk(job: Job, space: Workspace, index: int, upscaler: Upscaler) -> None:
    """Make chunk ``index`` of ``job`` in ``space`` (decoding the input up to it), unless a
    valid one is already done there."""
    decode_and_plan(job, ChunkRunner(job, space, upscaler, wanted=lambda k: k == index), stop_after=index)
