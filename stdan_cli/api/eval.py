"""``stdan eval`` as functions: :func:`prepare_eval` checks the request and finds the clips and
the weights (before any model loads), :func:`run_eval` scores them in this process or on Ray
workers (set up by :func:`stdan_cli.api.distribute.ray_workers`, as ``upscale --ray``)."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ContextManager

from stdan_cli.api.distribute import Distribution, ray_workers
from stdan_cli.api.upscaler import ModelChoice, prepare_backend
from stdan_cli.evaluation.progress_log import ProgressLog

if TYPE_CHECKING:
    from stdan_cli.evaluation import DatasetResult, Selection
    from stdan_cli.evaluation.provenance import WeightsIdentity

__all__ = ["EvalRequest", "EvalRun", "ProgressLog", "prepare_eval", "run_eval"]

# The protocol's windows are of 4 input frames (what engines are prepared for).
EVAL_WINDOW = 4


@dataclass(frozen=True)
class EvalRequest:
    """One ``stdan eval`` command as data."""

    dataset: str
    data_root: Path
    degradation: str = "bi"
    model: ModelChoice = field(default_factory=ModelChoice)
    limit: int | None = None
    list_file: Path | None = None
    json_path: Path | None = None  # every per-clip and per-frame score written there
    save_images: Path | None = None  # the scored output frames written under it
    distribution: Distribution = field(default_factory=Distribution)
    overwrite: bool = False  # an existing --json file, and frames in a --save-images folder of an earlier run, replaced


@dataclass
class EvalRun:
    """What is known before scoring: the clips chosen, the checkpoint and its identity."""

    request: EvalRequest
    selection: "Selection"
    checkpoint: str | None
    identity: "WeightsIdentity | None"

    @property
    def clips(self) -> list:
        return self.selection.clips

    def frames(self) -> int:
        return sum(len(c.gt) for c in self.clips)


def check_outputs(request: EvalRequest, selection: "Selection") -> None:
    """Fail before the (long) run, not after it, when a result cannot or may not be written:
    never over a file the run reads (the --list file, a frame, the weights), never through a
    link, never over an existing file without -y; --save-images never inside the data."""
    from stdan_cli.evaluation.saved_images import check_image_folder
    from stdan_cli.safe_files import claim_output

    r = request
    if r.json_path is not None:
        reads = [selection.clip_list.path] if selection.clip_list is not None else []
        reads += [p for clip in selection.clips for p in (*clip.gt, *(clip.lr or {}).values())]
        if r.model.weights is not None and Path(r.model.weights).is_file():
            reads.append(r.model.weights)
        claim_output(r.json_path, reads, r.overwrite, what="--json")
    if r.save_images is not None:
        check_image_folder(r.save_images, r.data_root, selection, r.overwrite)


def prepare_eval(request: EvalRequest) -> EvalRun:
    """Every check before a model loads: the outputs, the data, the model options; the default
    checkpoint is downloaded on first use."""
    from stdan_cli.evaluation import select_clips
    from stdan_cli.evaluation.provenance import identify_weights

    selection = select_clips(request.dataset, request.data_root, request.limit, request.list_file)
    check_outputs(request, selection)
    checkpoint = request.model.checkpoint()
    identity = identify_weights(checkpoint) if request.model.needs_weights else None
    return EvalRun(request, selection, checkpoint, identity)


def run_eval(run: EvalRun, progress: Callable | None = None, frame_progress: Callable | None = None,
             notify: Callable[[str], None] | None = None,
             display: Callable[[], ContextManager] | None = None) -> "DatasetResult":
    """Score ``run``'s clips; ``progress(done, total, clip_result)`` after each clip,
    ``frame_progress`` after each frame (this process only); ``display()`` is entered once the
    model is ready (workers joined, engines prepared). The result is written to ``--json``."""
    from stdan_cli.evaluation import evaluate, write_json
    from stdan_cli.evaluation.provenance import collect_run_info, utc_now

    request, dist = run.request, run.request.distribution
    notify = notify or (lambda line: None)
    started = utc_now()
    common = dict(degradation=request.degradation, limit=request.limit, save_images=request.save_images,
                  progress=progress, clip_list=run.selection.clip_list, overwrite=request.overwrite)
    with ExitStack() as stack:
        if dist.ray is not None:  # joined (or started) before the display shows
            from stdan_cli.cluster import evaluate_on_ray

            cluster = stack.enter_context(ray_workers(dist.ray, dist.workers, request.model, run.checkpoint))
            if display is not None:
                stack.enter_context(display())
            result = evaluate_on_ray(cluster.ray, request.dataset, request.data_root, cluster.spec, cluster.layout,
                                     cluster.weights, **common)
            # the workers' result: which clips, and the run's provenance, are known here
            result.selection = run.selection
            result.run = collect_run_info(result.device, result.precision, run.identity, started, hardware=None)
        else:
            upscaler = request.model.build(run.checkpoint)
            prepare_backend(upscaler, EVAL_WINDOW, notify)
            if display is not None:
                stack.enter_context(display())
            extra = {"frame_progress": frame_progress} if frame_progress is not None else {}
            result = evaluate(request.dataset, request.data_root, upscaler, weights=run.identity, **common, **extra)
    if request.json_path:
        write_json(result, request.json_path, request.overwrite)
    return result
