"""``stdan upscale`` as a function: :func:`run_upscale` takes one :class:`UpscaleRequest`,
builds the upscaler, picks the executor (this process, Ray workers, or one ``--part`` of an
array job), plans and runs the job, reporting through one progress interface
(:class:`~stdan_cli.progress.RunProgress`) and stopping when its :class:`CancelToken` is set.

Several inputs into a folder: :func:`plan_upscale_batch`, then :func:`run_upscale_batch`."""

from __future__ import annotations

import os
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ContextManager, Iterator

from stdan_cli.api.cancel import CancelToken
from stdan_cli.api.distribute import Distribution, ray_workers
from stdan_cli.api.upscaler import ModelChoice, prepare_backend
from stdan_cli.errors import OptionError
from stdan_cli.pipeline.options import UpscaleOptions
from stdan_cli.pipeline.precheck import check_before_loading, is_batch
from stdan_cli.progress import LOADING, PLANNING, STARTING_RAY, RunProgress
from stdan_cli.video.encoders import EncodeSettings, parse_encoder_options

if TYPE_CHECKING:
    from stdan_cli.api.batch import BatchItem, BatchResult
    from stdan_cli.jobs import Executor, JobSummary
    from stdan_cli.pipeline.plan import UpscalePlan
    from stdan_cli.upscalers import Upscaler

NotifyFn = Callable[[str], None]

__all__ = ["BatchRun", "CancelToken", "Distribution", "EncodeSettings", "ModelChoice", "UpscaleOptions",
           "UpscaleRequest", "UpscaleResult", "check_request", "cut_times", "files_read", "is_batch", "open_executor",
           "parse_encoder_options", "plan_upscale_batch", "run_upscale", "run_upscale_batch", "upscale_video"]


def _silent(line: str) -> None:
    pass


@dataclass(frozen=True)
class UpscaleRequest:
    """One ``stdan upscale`` command as data: inputs and output, the model, the pipeline's and
    the job's options, and how the work is shared out."""

    inputs: tuple[str, ...]  # one input, or several (or a folder) with ``output`` a folder
    output: str
    model: ModelChoice = field(default_factory=ModelChoice)
    options: UpscaleOptions = field(default_factory=UpscaleOptions)
    distribution: Distribution = field(default_factory=Distribution)
    ext: str | None = None  # several inputs: the outputs' extension (None: each input's, else mkv)
    quiet: bool = False  # FFmpeg's and the encoders' own logs dropped

    @property
    def is_batch(self) -> bool:
        return is_batch(list(self.inputs), self.output)


def check_request(request: UpscaleRequest) -> None:
    """The options', the output's and a missing input's errors, found in milliseconds without
    PyTorch or the decoder (:mod:`stdan_cli.pipeline.precheck`); planning checks them again."""
    check_before_loading(list(request.inputs), request.output, request.options)


def files_read(request: UpscaleRequest) -> list[str]:
    """The local files a one-input run reads: the input, the --scenes file, a weights file."""
    from stdan_cli.video.sources import is_local_file

    named = (request.inputs[0], request.options.scenes_file, request.model.weights)
    return [str(p) for p in named if p is not None and is_local_file(str(p))]


@dataclass
class UpscaleResult:
    """What :func:`run_upscale` did: the plan, the job's summary, the model that ran."""

    plan: "UpscalePlan"
    summary: "JobSummary"
    model: str  # the upscaler's name
    precision: str  # the precision it ran in
    cut_times: list[float]  # each scene cut's time in seconds (not computed for a --part task)
    work_dir: Path  # the job's work folder
    part_chunks: int | None = None  # --part: the chunks of the job that are this task's
    weights: str | None = None  # which weights ran: 'weights NAME, sha256 PREFIX[, not the official checkpoint]'
    precision_why: str = ""  # why --precision auto chose ``precision`` ("" when it was named)

    @property
    def what_ran(self) -> str:
        return what_ran(self.model, self.precision, self.precision_why, self.weights)


@dataclass
class BatchRun:
    """What :func:`run_upscale_batch` did: each file's result, and the one model that ran them
    (``model`` is None when no file ran)."""

    results: list["BatchResult"]
    model: str | None = None
    precision: str = ""
    precision_why: str = ""
    weights: str | None = None

    @property
    def what_ran(self) -> str | None:
        return None if self.model is None else what_ran(self.model, self.precision, self.precision_why, self.weights)


def what_ran(model: str, precision: str, why: str, weights: str | None) -> str:
    """'stdan, bf16 (auto: native bfloat16 on this CPU, AMX), weights stdan-vimeo, sha256 3f2a9c1e4b5d':
    the model, its precision and why, and its weights, as a summary names them."""
    return f"{model}, {precision}{f' ({why})' if why else ''}{f', {weights}' if weights else ''}"


@dataclass
class _InProcess:
    """The upscaler in this process, with the executor that makes its chunks (all, or a part's)."""

    upscaler: "Upscaler"
    executor: "Executor"

    def plan(self, input_path, output_path, options: UpscaleOptions) -> "UpscalePlan":
        from stdan_cli.pipeline import plan_upscale

        u = self.upscaler
        return plan_upscale(input_path, output_path, descriptor=u.descriptor, options=options, device=u.device)

    def run(self, plan: "UpscalePlan", progress, notify: NotifyFn) -> "JobSummary":
        from stdan_cli.jobs import run_job

        return run_job(plan, self.upscaler, self.executor, progress, notify)


@contextmanager
def open_executor(request: UpscaleRequest, checkpoint: str | None, notify: NotifyFn) -> Iterator[object]:
    """What makes the request's chunks: an object with ``upscaler`` (its description), ``plan``
    and ``run``. Ray workers stop on exit."""
    dist, model = request.distribution, request.model
    if dist.ray is not None:
        from stdan_cli.cluster import RayExecutor

        with ray_workers(dist.ray, dist.workers, model, checkpoint) as cluster:
            with RayExecutor(cluster.ray, request.inputs[0], cluster.spec, cluster.layout, cluster.weights,
                             dist.shared_input) as executor:
                yield executor
        return
    from stdan_cli.cluster.parts import PartExecutor
    from stdan_cli.jobs import InProcess

    upscaler = model.build(checkpoint)
    prepare_backend(upscaler, request.options.window, notify)
    yield _InProcess(upscaler, PartExecutor(upscaler, dist.part) if dist.part is not None else InProcess(upscaler))


def run_upscale(request: UpscaleRequest, progress: RunProgress | None = None, notify: NotifyFn | None = None,
                cancel: CancelToken | None = None, display: ContextManager | None = None) -> UpscaleResult:
    """Carry out a one-input ``request``: the user's mistakes are refused before the model loads,
    the default checkpoint is downloaded on first use, then ``display`` (if any) is entered for
    the rest of the run, the executor starts, the job is planned and run. ``notify`` receives
    the lines a user should read during the run; ``cancel`` stops it as Ctrl-C would."""
    if len(request.inputs) != 1 or request.is_batch:
        raise OptionError("several inputs or an output folder: use plan_upscale_batch and run_upscale_batch")
    from stdan_cli.jobs import default_work_dir
    from stdan_cli.pipeline import validate
    from stdan_cli.video.logs import quieted

    progress = progress if progress is not None else RunProgress()
    notify = notify or _silent
    dist = request.distribution
    input_path, output_path = request.inputs[0], Path(request.output)
    with ExitStack() as stack:
        stack.enter_context(quieted(request.quiet))
        validate(input_path, output_path, request.options)  # the user's mistakes first, before loading a model
        checkpoint = request.model.checkpoint()  # a first-run download shows its own bar, before the display
        progress.phase(STARTING_RAY if dist.ray is not None else LOADING if checkpoint is not None else PLANNING)
        if display is not None:
            stack.enter_context(display)
        if cancel is not None:
            progress.checks.append(cancel.check)
        executor = stack.enter_context(open_executor(request, checkpoint, notify))
        progress.phase(PLANNING)
        plan = executor.plan(input_path, output_path, request.options)
        summary = executor.run(plan, progress, notify)
        progress.finish()  # the clock stops: the display's last reading is the summary's time
        times = [] if dist.part is not None else cut_times(plan.input, summary.cut_frames, plan.info.rate)
    upscaler = executor.upscaler
    mine = None if dist.part is None else sum(1 for k in range(summary.chunks) if dist.part.wants(k))
    return UpscaleResult(plan, summary, upscaler.name, upscaler.precision, times,
                         Path(plan.options.work_dir or default_work_dir(plan.output)), mine, _weights_text(checkpoint),
                         upscaler.precision_why)


def _weights_text(checkpoint: str | None) -> str | None:
    """'weights stdan-vimeo, sha256 3f2a9c1e4b5d' for a model with weights (None without)."""
    if checkpoint is None:
        return None
    from stdan_cli.weights.identity import identify_weights

    return identify_weights(checkpoint).text()


def cut_times(source: str, frames: list[int], rate: Fraction) -> list[float]:
    """Each cut's time in seconds from the first frame (from the packets' times, else the rate)."""
    if not frames:
        return []
    from stdan_cli.video.frame_count import frame_times

    times = frame_times(source) if Path(source).is_file() else None
    return [times[f] if times is not None and f < len(times) else float(f / rate) for f in frames]


def plan_upscale_batch(request: UpscaleRequest) -> tuple[list["BatchItem"], list[str]]:
    """The files of a several-input ``request`` with every file's problems found before the model
    loads (:func:`~stdan_cli.api.batch.check_batch`), and the notices about the inputs."""
    from stdan_cli.api.batch import check_batch, plan_batch

    if request.distribution.ray is not None or request.distribution.part is not None:
        raise OptionError("--ray, --part and --scenes-out take one INPUT and one OUTPUT")
    items, notices = plan_batch(list(request.inputs), request.output, request.ext, request.options.overwrite)
    return check_batch(items, request.options), notices


def run_upscale_batch(request: UpscaleRequest, items: list["BatchItem"], on_file=None,
                      progress: Callable[[int, int | None], None] | None = None,
                      notify: NotifyFn | None = None, display: ContextManager | None = None) -> BatchRun:
    """Upscale the ``items`` :func:`plan_upscale_batch` gave, one upscaler for all (built only
    when a file is to run; then ``display``, if any, is entered for the files' work);
    ``on_file(index, item)`` when each file starts."""
    from stdan_cli.api.batch import run_batch
    from stdan_cli.video.logs import quieted

    with ExitStack() as stack:
        stack.enter_context(quieted(request.quiet))
        if not any(item.skip is None for item in items):
            return BatchRun(run_batch(items, None, request.options))
        checkpoint = request.model.checkpoint()
        upscaler = request.model.build(checkpoint)
        if display is not None:
            stack.enter_context(display)
        results = run_batch(items, upscaler, request.options, on_file, progress, notify=notify or _silent)
    return BatchRun(results, upscaler.name, upscaler.precision, upscaler.precision_why, _weights_text(checkpoint))


def upscale_video(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    upscaler: "Upscaler",
    options: UpscaleOptions = UpscaleOptions(),
    progress=None,
    notify: NotifyFn | None = None,
    executor: "Executor | None" = None,
) -> "JobSummary":
    """One input with an upscaler built by the caller: plan (every check first), then run the job."""
    from stdan_cli.jobs import run_job
    from stdan_cli.pipeline import plan_upscale

    plan = plan_upscale(input_path, output_path, upscaler.descriptor, options, upscaler.device)
    return run_job(plan, upscaler, executor, progress, notify or _silent)
