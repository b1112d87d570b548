"""A whole upscaling job: plan, chunks, resume, assembly.

Three steps can be called separately (a scheduler handing chunks to other processes uses
them; :func:`run_job` interleaves them in one decode of the input):

- :func:`prepare_job` turns an :class:`~stdan_cli.pipeline.plan.UpscalePlan` into a job and
  its manifest (no work yet);
  :func:`plan_job` decodes the input once, without the model, and completes the chunk table;
- :func:`run_chunk` makes one chunk: it needs only the job (input path, manifest) and an
  upscaler, and leaves the chunk's file and done record in the work folder;
- :func:`assemble_job` joins the chunks into the output and removes the work folder.

:func:`run_job` is ``stdan upscale``: it plans while decoding (cuts are detected on the frames
the model gets), skips the chunks a previous run completed (each checked: present, size,
sha256), makes the others, and assembles. Interrupted, it keeps the completed chunks and says
how to continue; when no chunk was completed nothing is left behind.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable

import av
import torch

from stdan_cli import __version__
from stdan_cli.errors import InputError, JobInterrupted, JobMismatch, OptionError, OutputError, StdanError
from stdan_cli.jobs.assemble import CopyRange, assemble
from stdan_cli.jobs.chunk import ChunkEncoder, ChunkFormat
from stdan_cli.jobs.manifest import (
    TEMP_SUFFIX,
    DoneRecord,
    Manifest,
    check_done,
    differences,
    done_records,
    file_sha256,
    input_identity,
    load_manifest,
    refusal_text,
    remove_done,
)
from stdan_cli.jobs.plan import ChunkEnd, JobPlanner, PlanSettings, RepeatTask, Task, WindowTask
from stdan_cli.pipeline.background import prefetch
from stdan_cli.pipeline.options import CHUNK_SECONDS
from stdan_cli.pipeline.plan import UpscalePlan
from stdan_cli.pipeline.run import UpscaleSummary
from stdan_cli.pipeline.scenes import DEFAULT_THRESHOLD, SceneList, cut_source, read_scene_list
from stdan_cli.pipeline.window_frames import WindowUpscaler
from stdan_cli.progress import ASSEMBLING, PLANNING, progress_events
from stdan_cli.upscalers import Upscaler
from stdan_cli.video.decode import VideoReader

LOCK = "lock"  # file in the work folder locked by the run using it


@dataclass(frozen=True)
class JobOptions:
    scene_threshold: float = DEFAULT_THRESHOLD  # 0: no detection
    scenes_file: Path | None = None  # scene starts from a file instead of detection
    chunk_frames: int | None = None  # input frames per chunk; None: about CHUNK_SECONDS of input
    start: float | None = None  # seconds from the first frame
    end: float | None = None  # exclusive
    work_dir: Path | None = None  # None: .<output name>.stdan-job beside the output
    restart: bool = False  # discard the work folder's chunks


@dataclass
class JobSummary(UpscaleSummary):
    scenes: int = 1
    chunks: int = 1
    resumed: int = 0  # chunks a previous run had completed
    cut_frames: list[int] = field(default_factory=list)  # input frames (0-based) where a scene after a cut starts


@dataclass
class Job:
    """Everything decided before work starts; the manifest pins it down."""

    plan: UpscalePlan  # input, output, encoding, tiles, timing
    work_dir: Path
    manifest: Manifest
    settings: PlanSettings
    chunk_format: ChunkFormat
    scenes: SceneList | None
    scene_threshold: float
    expected: int | None  # output frames, when the container says how many frames the input has

    @property
    def input(self) -> Path:
        return self.plan.input

    @property
    def output(self) -> Path:
        return self.plan.output

    def cut_source(self):
        return cut_source(self.scene_threshold, self.scenes)


ProgressFn = Callable[[int, "int | None"], None]
NotifyFn = Callable[[str], None]


def default_work_dir(output: Path) -> Path:
    return output.with_name(f".{output.name}.stdan-job")


def weights_identity(upscaler: Upscaler) -> str | None:
    """sha256 of the upscaler's weights as loaded (names, dtypes and bytes of its state_dict)."""
    known = getattr(upscaler, "weights_sha256", None)
    if known:
        return known
    model = getattr(upscaler, "model", None)
    if model is None:
        return None
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}:{t.dtype}:{tuple(tensor.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def check_job_options(input_path, output_path, job: JobOptions) -> None:
    """Raise the error a user would otherwise meet later (before any model is loaded)."""
    src, dst = Path(input_path), Path(output_path)
    if src.exists() and dst.exists() and src.resolve() == dst.resolve():
        raise OptionError(f"output {dst} is the input; choose another file name")
    if job.chunk_frames is not None and job.chunk_frames < 1:
        raise OptionError("--chunk-frames must be at least 1")
    if (job.start is not None and job.start < 0) or (job.end is not None and job.end < 0):
        raise OptionError("--start and --end cannot be negative")
    if job.start is not None and job.end is not None and job.end <= job.start:
        raise OptionError(f"--end ({job.end:g} s) must be after --start ({job.start:g} s)")
    if job.scene_threshold < 0:
        raise OptionError("--scene-threshold cannot be negative (0 turns detection off)")
    if job.scenes_file is not None:
        read_scene_list(job.scenes_file)


def prepare_job(plan: UpscalePlan, upscaler: Upscaler, job: JobOptions = JobOptions()) -> Job:
    """Decide everything the manifest records for ``plan`` (from :func:`stdan_cli.pipeline.plan_upscale`)."""
    check_job_options(plan.input, plan.output, job)
    scenes = read_scene_list(job.scenes_file) if job.scenes_file is not None else None
    info, options = plan.info, plan.options
    chunk_frames = job.chunk_frames or max(options.window, round(CHUNK_SECONDS * info.rate))
    settings = PlanSettings(options.mode, options.window, options.stride, chunk_frames, job.start, job.end)
    width, height = plan.size_out
    chunk_format = ChunkFormat(width, height, plan.rate_out, plan.time_base, plan.encoding, plan.colour, info.rotation,
                               info.sar, plan.container, plan.output.suffix)
    tiled = len(plan.tiles) > 1
    manifest = Manifest(
        input=_input_identity(plan.input),
        options={
            "--mode": options.mode, "--window": options.window, "--stride": options.stride,
            "tiles (--tile/--memory-budget)": [list(t.__dict__.values()) for t in plan.tiles] if tiled else None,
            "--codec": plan.encoding.codec, "--pix-fmt": plan.encoding.pix_fmt, "--crf": plan.encoding.options.get("crf"),
            "--preset": plan.encoding.options.get("preset"), "encoder options": plan.encoding.options,
            "output container": plan.container.format, "--outscale": options.outscale,
            "--compare": options.compare, "--deinterlace": options.deinterlace, "--vf": options.video_filter,
            "--scene-threshold": None if scenes is not None else job.scene_threshold,
            "--scenes": file_sha256(Path(job.scenes_file)) if scenes is not None else None,
            "--chunk-frames": chunk_frames, "--start": job.start, "--end": job.end,
        },
        model={"--model": upscaler.name, "--precision": upscaler.precision, "weights sha256": weights_identity(upscaler)},
        version=__version__, left_out=_left_out(plan, job),
    )
    return Job(
        plan=plan, work_dir=Path(job.work_dir) if job.work_dir else default_work_dir(plan.output),
        manifest=manifest, settings=settings, chunk_format=chunk_format, scenes=scenes,
        scene_threshold=job.scene_threshold, expected=_expected_outputs(plan, settings),
    )


def _left_out(plan: UpscalePlan, job: JobOptions) -> list[str]:
    """The recorded options whose value is a default because the user did not give them."""
    given = {"--chunk-frames": job.chunk_frames, "--codec": plan.options.encoding.codec,
             "--pix-fmt": plan.options.encoding.pix_fmt, "--crf": plan.options.encoding.crf,
             "--preset": plan.options.encoding.preset}
    return sorted(key for key, value in given.items() if value is None)


def _input_identity(source: str) -> dict:
    """A local file by size, time and content; an image-sequence pattern or a URL by its name."""
    path = Path(source)
    if path.is_file():
        return {"path": str(path.resolve()), **input_identity(path)}
    return {"source": source}


def _expected_outputs(plan: UpscalePlan, settings: PlanSettings) -> int | None:
    from stdan_cli.video.frame_count import frames_in_range

    exact = Path(plan.input).is_file() and not plan.options.video_filter  # a filter may change the count
    counted = frames_in_range(plan.input, settings.start, settings.end) if exact else None
    if counted is not None:  # exact, from the packets' times
        return plan.mode.count(counted) if counted else None
    info = plan.info
    if not info.frame_count:
        return None
    n = info.frame_count
    if settings.has_range:
        first = math.ceil((settings.start or 0) * info.rate)
        last = n if settings.end is None else min(n, math.ceil(settings.end * info.rate))
        n = max(0, last - first)
    return plan.mode.count(n) if n else None


# --- the work folder ------------------------------------------------------------------------


class Workspace:
    """The job's work folder, locked for this process while it is open."""

    def __init__(self, job: Job, restart: bool, notify: NotifyFn):
        self.job = job
        self.dir = job.work_dir
        created = make_work_folder(self.dir)
        self._lock = lock_work_folder(self.dir)  # before anything in the folder is read or removed
        try:
            self._open(restart, notify)
        except BaseException:
            self.close(remove=created)
            raise

    def _open(self, restart: bool, notify: NotifyFn) -> None:
        job = self.job
        if restart:
            for path in self.dir.iterdir():
                if path.name != LOCK:
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
        recorded = load_manifest(self.dir)
        if recorded is not None:
            changed = differences(recorded, job.manifest)
            if changed:
                raise JobMismatch(refusal_text(self.dir, changed))
            job.manifest.chunks, job.manifest.video, job.manifest.planned = recorded.chunks, recorded.video, recorded.planned
        for stray in self.dir.glob("*" + TEMP_SUFFIX):  # left by a killed run
            stray.unlink(missing_ok=True)
        job.manifest.save(self.dir)
        self.done: dict[int, DoneRecord] = {}
        for index, record in done_records(self.dir).items():
            recorded_spec = job.manifest.chunks[index] if index < len(job.manifest.chunks) else None
            problem = "was recorded for another plan" if recorded_spec != record.spec else check_done(self.dir, record, record.spec)
            if problem:
                notify(f"chunk {index} {problem}; it will be made again")
                self.discard(index, record)
            else:
                self.done[index] = record

    def discard(self, index: int, record: DoneRecord | None = None) -> None:
        remove_done(self.dir, index, record)
        self.done.pop(index, None)

    def close(self, remove: bool) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)


def make_work_folder(work_dir: Path) -> bool:
    """Create ``work_dir`` (and its parents) if needed; True when it did not exist."""
    if work_dir.exists() and not work_dir.is_dir():
        raise OutputError(f"work folder {work_dir} is a file; remove it or pass another --work-dir")
    created = not work_dir.exists()
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create work folder {work_dir}: {exc.strerror or exc}") from None
    return created


def lock_work_folder(work_dir: Path, shared: bool = False, busy: str = "another stdan run"):
    """Lock ``work_dir`` for this run (an open file; closing it unlocks): exclusively, or shared
    with other ``--part`` tasks. Raises the user's error, naming ``busy``, when it is taken."""
    try:
        import fcntl
    except ImportError:  # no advisory locks on this platform
        return None
    handle = open(work_dir / LOCK, "a")
    try:
        fcntl.flock(handle, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise OutputError(f"{busy} is using the work folder {work_dir}; wait for it or stop it") from None
    return handle


# --- doing chunks ---------------------------------------------------------------------------


class ChunkRunner:
    """Carries out planned tasks: chunks already done are skipped, wanted ones are made."""

    def __init__(self, job: Job, space: Workspace, upscaler: Upscaler, wanted: Callable[[int], bool],
                 progress: ProgressFn | None, done_outputs: int):
        self.job, self.space, self.upscaler, self.wanted = job, space, upscaler, wanted
        self.window_upscaler = WindowUpscaler(job.plan, upscaler) if upscaler is not None else None
        self.progress = progress_events(progress)
        self.outputs = done_outputs
        self.encoder: ChunkEncoder | None = None
        self.current: int | None = None
        self.specs: list = []
        self.made = 0

    def handle(self, task: Task) -> None:
        if isinstance(task, WindowTask):
            if task.chunk != self.current:
                self._start(task)
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

    def _start(self, task: WindowTask) -> None:
        self.current = task.chunk
        record = self.space.done.get(task.chunk)
        if record is not None and record.spec.first_frame == task.first_frame:
            return  # done by an earlier run (checked when the workspace was opened)
        if record is not None:
            self.space.discard(task.chunk, record)
        if self.wanted(task.chunk):
            self.encoder = ChunkEncoder(self.space.dir, task.chunk, self.job.chunk_format)

    def _end(self, end: ChunkEnd) -> None:
        spec = end.spec
        self.job.manifest.record(spec)
        self.specs.append(spec)
        if self.encoder is not None:
            self.job.manifest.save(self.space.dir)  # the chunk is in the table before it is done
            self.space.done[spec.index] = self.encoder.finish(spec, end.hold)
            self.encoder = None
            self.made += 1
        elif spec.index in self.space.done and self.space.done[spec.index].spec != spec:
            raise JobMismatch(f"chunk {spec.index} is planned differently than the one done before; "
                              "pass --restart to discard the work folder and start over")
        self.current = None

    def _advance(self, n: int) -> None:
        self.outputs += n
        self.progress(self.outputs, self.job.expected)

    def abort(self) -> None:
        if self.encoder is not None:
            self.encoder.abort()
            self.encoder = None


def plan_and_run(job: Job, runner: ChunkRunner, stop_after: int | None = None) -> tuple[JobPlanner, list[str]]:
    """Decode the input once, plan as frames arrive and hand every task to ``runner``."""
    with VideoReader(job.input, job.plan.options.deinterlace, job.plan.options.video_filter) as reader:
        planner = JobPlanner(job.settings, job.cut_source(), job.plan.info.time_base)
        for frame in prefetch(reader.frames()):
            for task in planner.push(frame):
                runner.handle(task)
            if planner.complete or (stop_after is not None and planner.chunks > stop_after + 1):
                break
        else:
            for task in planner.finish():
                runner.handle(task)
        job.manifest.video.update(_copy_facts(job, planner))
        return planner, list(reader.warnings)


def _copy_facts(job: Job, planner: JobPlanner) -> dict:
    """What the assembly needs to copy the input's other streams: the range in the input's seconds."""
    tb = job.plan.info.time_base
    facts = {"keep_audio": job.plan.mode.keeps_audio, "shift": job.settings.has_range}
    if planner.first_in_range is not None:
        facts["start_seconds"] = float(planner.origin_pts * tb) if job.settings.has_range else None
        facts["end_seconds"] = (float(planner.pts0 * tb) + job.settings.end) if job.settings.end is not None else None
    return facts


def plan_job(job: Job, notify: NotifyFn = lambda line: None) -> Manifest:
    """Complete the job's chunk table by decoding the input once without the model; the
    manifest is saved in the work folder (created if needed)."""
    space = Workspace(job, restart=False, notify=notify)
    try:
        runner = ChunkRunner(job, space, upscaler=None, wanted=lambda k: False, progress=None, done_outputs=0)
        plan_and_run(job, runner)
        job.manifest.planned = True
        job.manifest.save(space.dir)
    finally:
        space.close(remove=False)
    return job.manifest


def run_chunk(job: Job, index: int, upscaler: Upscaler, notify: NotifyFn = lambda line: None) -> DoneRecord:
    """Make chunk ``index`` (decoding the input up to it), unless a valid one is already done."""
    space = Workspace(job, restart=False, notify=notify)
    runner = ChunkRunner(job, space, upscaler, wanted=lambda k: k == index, progress=None, done_outputs=0)
    try:
        plan_and_run(job, runner, stop_after=index)
        job.manifest.save(space.dir)
    except BaseException:
        runner.abort()
        raise
    finally:
        space.close(remove=False)
    if index not in space.done:
        raise OutputError(f"the job has no chunk {index} (it has {len(job.manifest.chunks)})")
    return space.done[index]


def assemble_job(job: Job) -> list[str]:
    """Join the done chunks into the output (all must be done) and remove the work folder."""
    space = Workspace(job, restart=False, notify=lambda line: None)
    try:
        missing = [c.index for c in job.manifest.chunks if c.index not in space.done]
        if not job.manifest.planned or missing or not job.manifest.chunks:
            raise OutputError(f"the job is not complete: chunks {missing or 'not planned'} are missing")
        notices = assemble_chunks(job, space)
    except BaseException:
        space.close(remove=False)
        raise
    space.close(remove=True)
    return notices


def assemble_chunks(job: Job, space: Workspace) -> list[str]:
    """Join the chunks done in ``space`` into the output (see :func:`stdan_cli.jobs.assemble.assemble`)."""
    facts = job.manifest.video
    start = facts.get("start_seconds")
    span = CopyRange(float("-inf") if start is None else start, facts.get("end_seconds"), bool(facts.get("shift")))
    records = [space.done[c.index] for c in job.manifest.chunks]
    files = [space.dir / r.file for r in records]
    tb = job.chunk_format.time_base
    times = [(r.start * tb, r.end * tb) for r in records]
    return assemble(files, times, job.output, job.input, job.chunk_format.container,
                    facts.get("keep_audio", True), span, job.plan.mode.duration_scale)


def check_planned(job: Job, planner: JobPlanner) -> None:
    """Raise the user's error when the complete plan has no chunk (nothing to make)."""
    if not job.manifest.chunks:
        if job.settings.has_range and planner.frames_seen:
            raise OptionError(f"no frame of {job.input} lies in the range --start/--end; nothing was written")
        raise InputError(f"no frame of {job.input} could be decoded; nothing was written")


def close_after_error(space: Workspace, exc: BaseException) -> None:
    """Close the work folder of a job that ``exc`` stopped: kept when chunks are done, removed
    otherwise. Raises the error a user should see instead (saying what was kept), or returns
    when ``exc`` itself should be raised."""
    # What is on disk counts: an interrupt can land after a done record was written but
    # before this run noted it.
    kept = len(done_records(space.dir))
    space.close(remove=kept == 0)
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


def run_job(
    plan: UpscalePlan,
    upscaler: Upscaler,
    job_options: JobOptions = JobOptions(),
    progress: ProgressFn | None = None,
    notify: NotifyFn = lambda line: None,
) -> JobSummary:
    """Carry out ``plan`` as a resumable job (see the module's docstring); ``notify`` gets
    the lines a user should read (resuming, chunks made again)."""
    started = time.perf_counter()
    events = progress_events(progress)
    events.phase(PLANNING)
    job = prepare_job(plan, upscaler, job_options)
    space = Workspace(job, job_options.restart, notify)
    resumed = len(space.done)
    if resumed:
        notify(f"resuming: {resumed} chunk(s) already done in {space.dir}")
    runner = ChunkRunner(job, space, upscaler, wanted=lambda k: True, progress=events,
                         done_outputs=sum(r.spec.outputs for r in space.done.values()))
    events.total(job.expected)
    events.resumed(runner.outputs)
    try:
        planner, warnings = plan_and_run(job, runner)
        job.manifest.planned = True
        job.manifest.save(space.dir)
        check_planned(job, planner)
        events.total(sum(c.outputs for c in job.manifest.chunks), exact=True)
        events.phase(ASSEMBLING)
        notices = assemble_chunks(job, space)
    except BaseException as exc:
        runner.abort()
        close_after_error(space, exc)
        raise
    space.close(remove=True)
    notices += runner.window_upscaler.notices + list(upscaler.notices)
    return job_summary(job, planner, warnings, notices, started, resumed)


def job_summary(job: Job, planner: JobPlanner, warnings: list[str], notices: list[str], started: float,
                resumed: int, summary_type: type = JobSummary, **extra) -> JobSummary:
    """What a finished job reports (``started``: its ``time.perf_counter()`` at the start)."""
    plan = job.plan
    specs = job.manifest.chunks
    fmt = job.chunk_format
    info = plan.info
    return summary_type(
        input=plan.input, output=plan.output, frames_in=planner.range_frames, frames_out=sum(c.outputs for c in specs),
        size_in=(info.width, info.height), size_out=(fmt.width, fmt.height), rate_out=Fraction(fmt.rate),
        seconds=time.perf_counter() - started, tiles=len(plan.tiles), warnings=warnings,
        notices=list(fmt.encoding.notices) + notices, scenes=len({c.scene for c in specs}), chunks=len(specs),
        resumed=resumed, cut_frames=[c.first_frame for a, c in zip(specs, specs[1:]) if c.scene != a.scene], **extra,
    )
