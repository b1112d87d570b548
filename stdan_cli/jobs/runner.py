"""One decode of the input: frames are planned into tasks as they arrive, and the tasks of
the chunks wanted are carried out (model windows encoded into chunk files).

This is the in-process executor's work and also how every other executor plans (with no
chunk wanted, the model never runs). Once the plan is complete, a ``--part`` task or a Ray
worker makes its chunks with :func:`make_chunks`: each run of consecutive chunks is decoded
from its first chunk's first frame, reached by a seek (checked to be exactly that frame), so a
task decodes about its own chunks whichever they are; where no seek reaches it, from the input's start.
"""

from __future__ import annotations

import itertools
from typing import Callable, Collection, Iterator

from stdan_cli.jobs.chunk import ChunkEncoder
from stdan_cli.jobs.job import Job
from stdan_cli.jobs.manifest import VideoFacts
from stdan_cli.jobs.plan import ChunkEnd, JobPlanner, RepeatTask, Task, WindowTask, frame_digest
from stdan_cli.jobs.workspace import NotifyFn, Workspace
from stdan_cli.pipeline.background import prefetch
from stdan_cli.pipeline.window_frames import WindowUpscaler
from stdan_cli.progress import progress_events
from stdan_cli.upscalers import Upscaler
from stdan_cli.video.decode import Frame, SeekMissed, VideoReader

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
        if self.window_upscaler is not None:
            # A chunk's frames are a function of the chunk alone, whichever executor makes it (this
            # process, a --part task, a Ray worker): no features are carried in from the chunk
            # before. Low precision rounds a frame's features differently in a batch of 4 frames
            # than alone, so carried features would change its output by a code value or more.
            self.window_upscaler.start_chunk()
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


def decode_and_plan(job: Job, runner: ChunkRunner, stop_after: int | None = None,
                    start: int | None = None) -> tuple[JobPlanner, list[str]]:
    """Decode the input once, plan as frames arrive and hand every task to ``runner`` (stop
    once chunk ``stop_after`` is planned, if given). With ``start``, a chunk of the complete
    plan, decoding starts at that chunk's first frame (see :func:`_seek_chunk`; raises
    :class:`SeekMissed` before any task is handed over when no seek reaches it exactly). A
    decode from the input's start that completes the plan records the plan's seek table,
    unless timestamps had to be repaired (a seek could not find them again). On any error or
    interrupt the runner's unfinished chunk is discarded."""
    try:
        with VideoReader(job.input, job.options.deinterlace, job.options.video_filter) as reader:
            if start is None:
                planner = JobPlanner(job.options, job.chunk_frames, job.cut_source(), job.plan.info.time_base)
                frames = reader.frames()
            else:
                planner, frames = _seek_chunk(job, reader, start)
            for frame in prefetch(frames):
                for task in planner.push(frame):
                    runner.handle(task)
                if planner.complete or (stop_after is not None and planner.chunks > stop_after + 1):
                    break
            else:
                for task in planner.finish():
                    runner.handle(task)
            if start is None:
                job.manifest.video = _copy_facts(job, planner)
                if planner.complete:
                    job.manifest.seek = planner.seek_table() if not reader.repaired else None
            return planner, list(reader.warnings)
    except BaseException:
        runner.abort()
        raise


def _seek_chunk(job: Job, reader: VideoReader, index: int) -> tuple[JobPlanner, Iterator[Frame]]:
    """The planner that continues the plan at chunk ``index`` and the frames from its first on,
    reached by a seek: :class:`SeekMissed` unless the frame reached has the planned timestamp
    (checked by the reader) and the planned pixels (checked here, against the seek table)."""
    table, spec = job.manifest.seek, job.manifest.chunks[index]
    frames = reader.frames_from(table.starts[index].pts)
    first = next(frames, None)
    if first is None or frame_digest(first) != table.starts[index].sha256:
        raise SeekMissed(f"the frame the seek reached is not the planned frame {spec.first_frame} (its pixels differ)")
    planner = JobPlanner.at_chunk(job.options, job.chunk_frames, job.plan.info.time_base, table, spec)
    return planner, itertools.chain([first], frames)


def make_chunks(job: Job, runner: ChunkRunner, todo: Collection[int], notify: NotifyFn) -> list[str]:
    """Make chunks ``todo`` of a job whose plan is complete with ``runner`` (which wants them):
    each run of consecutive chunks is decoded from its first chunk's first frame on, reached by
    a seek. When a seek cannot reach that frame exactly, or the plan has no seek table, the
    chunks not yet made are made in one decode from the input's start, and ``notify`` says
    why. Returns the decoder's warnings."""
    warnings: list[str] = []
    reason = None if job.manifest.seek is not None else \
        "the plan has no seek table (the input's timestamps were repaired while planning)"
    for first, last in _runs(sorted(todo)) if reason is None else []:
        try:
            _, found = decode_and_plan(job, runner, stop_after=last, start=first)
        except SeekMissed as exc:
            reason = f"no seek reaches chunk {first} exactly: {exc}"
            break
        warnings += [w for w in found if w not in warnings]
    if reason is not None:
        notify(f"decoding from the start of the input to make the chunks: {reason}")
        _, warnings = decode_and_plan(job, runner, stop_after=max(todo))
    return warnings


def _runs(indices: list[int]) -> list[tuple[int, int]]:
    """Sorted ``indices`` as (first, last) of each run of consecutive ones."""
    runs: list[tuple[int, int]] = []
    for k in indices:
        if runs and runs[-1][1] == k - 1:
            runs[-1] = (runs[-1][0], k)
        else:
            runs.append((k, k))
    return runs


def _copy_facts(job: Job, planner: JobPlanner) -> VideoFacts:
    """What the assembly needs to copy the input's other streams: the range in the input's seconds."""
    tb = job.plan.info.time_base
    options = job.options
    start = end = None
    if planner.first_in_range is not None:
        start = float(planner.origin_pts * tb) if options.has_range else None
        end = (float(planner.pts0 * tb) + options.end) if options.end is not None else None
    return VideoFacts(job.plan.mode.keeps_audio, options.has_range, start, end)


def make_one_chunk(job: Job, space: Workspace, index: int, upscaler: Upscaler,
                   notify: NotifyFn = lambda line: None) -> None:
    """Make chunk ``index`` of ``job`` (whose plan is complete) in ``space``, decoding from the
    chunk's first frame (see :func:`make_chunks`), unless a valid one is already done there."""
    make_chunks(job, ChunkRunner(job, space, upscaler, wanted=lambda k: k == index), [index], notify)
