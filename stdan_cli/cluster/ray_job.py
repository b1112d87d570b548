"""``stdan upscale --ray``: a job's chunks made by Ray actors, stored and assembled by the driver.

:class:`RayExecutor` is an executor of the one job driver (:func:`stdan_cli.jobs.run_job`):
the work folder, manifest, resume, checks and assembly are a local run's; only the model runs
elsewhere:

1. Actors start (each builds its upscaler once) and describe it: name, precision, weights'
   sha256, version. The manifest records that description, so a job may be started on one
   machine and resumed on a cluster, or the other way round, when they run the same model.
2. The driver decodes the input once without the model and completes the chunk table (scene
   cuts are found while decoding, so the plan is complete before any chunk is handed out).
3. Pending chunks go to the actors, at most two in flight each. An actor gets the job (the
   plan, the manifest), decodes its own copy of the input from the chunk's first frame (a
   seek, checked against the plan's seek table), makes it, and
   answers with the chunk file's bytes and done record. The driver checks the bytes against
   the sha256, the chunk against its own plan, and stores it with the same atomic rename and
   done record as a local run.
4. When every chunk is done the driver assembles the output and removes the work folder.

The input and the weights reach the workers through Ray's object store, once each
(``shared_input``: the input path itself, when every node reads the same filesystem).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from stdan_cli import __version__
from stdan_cli.cluster.pool import WorkerPool
from stdan_cli.cluster.session import RayError, WorkerLayout
from stdan_cli.cluster.workers import ChunkResult, ChunkWorker, Payload, WorkerDescription, WorkerSpec
from stdan_cli.errors import InputError, JobMismatch
from stdan_cli.jobs import Job, JobSummary, Made, Workspace, run_job
from stdan_cli.jobs.driver import NotifyFn, check_planned
from stdan_cli.jobs.plan import ChunkSpec
from stdan_cli.jobs.runner import ChunkRunner, ProgressFn, decode_and_plan
from stdan_cli.model import ModelDescriptor
from stdan_cli.pipeline.options import UpscaleOptions
from stdan_cli.pipeline.plan import UpscalePlan, plan_upscale
from stdan_cli.progress import DETECTING, progress_events


@dataclass(frozen=True)
class RemoteModel:
    """The model the workers run, as the driver sees it: enough to plan and to fill the manifest
    (it upscales nothing: the workers do)."""

    name: str
    descriptor: ModelDescriptor
    device: torch.device
    precision: str
    weights_sha256: str | None
    memory_budget: int  # bytes one window may use on the workers' devices (the smallest)
    precision_why: str = ""  # why the workers' --precision auto chose ``precision``


def agreed_description(descriptions: list[WorkerDescription]) -> WorkerDescription:
    """The one description every worker gave (with the smallest memory budget); an error
    naming what differs otherwise."""
    first = descriptions[0]
    if first.version != __version__:
        raise RayError(f"the Ray workers run stdan-cli {first.version}, this driver {__version__}; "
                       "install the same version on every node")
    for other in descriptions[1:]:
        if other != first:
            raise RayError(f"the Ray workers do not run the same model: {first.precision} on {first.device_type} "
                           f"and {other.precision} on {other.device_type}; pass --precision or --device explicitly")
    return replace(first, memory_budget=min(d.memory_budget for d in descriptions))


class RayExecutor:
    """Ray actors ready to make the chunks of jobs on one input: an executor of
    :func:`~stdan_cli.jobs.run_job`. Use as a context manager (the actors stop on exit; after
    an error or Ctrl-C their in-flight work is dropped)."""

    shares_folder = False
    assembles = True
    busy = "another stdan run"

    def __init__(self, ray, input_path: str | Path, spec: WorkerSpec, layout: WorkerLayout,
                 weights_path: Path | None = None, shared_input: bool = False):
        self.ray = ray
        src = Path(input_path)
        try:
            video = (Payload(src.name, path=str(src.resolve())) if shared_input
                     else Payload(src.name, data=src.read_bytes()))
        except OSError as exc:
            raise InputError(f"cannot read input {src}: {exc.strerror or exc}") from None
        weights = Payload(Path(weights_path).name, data=Path(weights_path).read_bytes()) if weights_path else None
        self.layout = layout
        args = (spec, ray.put(weights) if weights else None, ray.put(video))
        self.pool = WorkerPool(ray, ChunkWorker, args, layout.workers,
                               {"num_cpus": layout.num_cpus, "num_gpus": layout.num_gpus})
        try:
            d = agreed_description(self.pool.call_all("describe"))
        except BaseException:
            self.pool.shutdown(graceful=False)
            raise
        self.upscaler = RemoteModel(d.name, d.descriptor, torch.device(d.device_type), d.precision, d.weights_sha256,
                                    d.memory_budget, d.precision_why)

    def wants(self, index: int) -> bool:
        return True

    def __enter__(self) -> "RayExecutor":
        return self

    def __exit__(self, kind, exc, tb) -> None:
        self.pool.shutdown(graceful=exc is None)

    def plan(self, input_path: str | Path, output_path: str | Path, options: UpscaleOptions) -> UpscalePlan:
        """:func:`~stdan_cli.pipeline.plan_upscale` for these workers: their model, their device,
        their memory (this machine may have no such device)."""
        u = self.upscaler
        return plan_upscale(input_path, output_path, u.descriptor, options, u.device, budget_bytes=u.memory_budget)

    def make(self, job: Job, space: Workspace, progress: ProgressFn | None, notify: NotifyFn) -> Made:
        """The executor's part of :func:`stdan_cli.jobs.run_job`: plan the whole job here (one
        decode, no model), then hand the chunks not done to the workers and store what they send."""
        events = progress_events(progress)
        events.phase(DETECTING)  # the driver decodes the input once to complete the chunk table
        planner, warnings = decode_and_plan(job, ChunkRunner(job, space, None, wanted=lambda k: False))
        job.manifest.planned = True
        space.save_manifest(job.manifest)
        check_planned(job, planner)
        already = space.done_outputs()
        done = [already, 0]
        events.total(sum(c.outputs for c in job.manifest.chunks), exact=True)
        events.window_started()  # the workers' first chunks start now
        job_ref = self.ray.put(job)  # sent once; every chunk call refers to it

        def store(index: int, result: ChunkResult) -> None:
            store_chunk(space, job.manifest.chunks[index], result)
            done[0] += result.record.spec.outputs
            done[1] += 1
            events.advance(done[0])

        pending = [c.index for c in job.manifest.chunks if c.index not in space.done]
        self.pool.run(pending, lambda actor, index: actor.make_chunk.remote(job_ref, index), store,
                      label=lambda index: f"chunk {index}")
        return Made(planner, warnings, [], done[1], done[0] - already)

    def run(self, plan: UpscalePlan, progress: ProgressFn | None = None,
            notify: NotifyFn = lambda line: None) -> JobSummary:
        """Carry out ``plan`` (made with :meth:`plan`) on the workers, with the one job driver."""
        summary = run_job(plan, self.upscaler, self, progress, notify)
        summary.workers, summary.retried = self.layout.workers, len(self.pool.retried)
        return summary


def store_chunk(space: Workspace, spec: ChunkSpec, result: ChunkResult) -> None:
    """Write a chunk a worker made into the work folder, as a local run would (file renamed
    into place, then its done record), after checking it: the planned chunk, its derived
    name, its bytes against the record's size and sha256. Storing the same chunk twice is harmless."""
    record = result.record
    if record.spec != spec:
        raise JobMismatch(f"a Ray worker planned chunk {spec.index} differently from the driver ({record.spec} "
                          f"instead of {spec}); every node must run the driver's stdan-cli and PyAV versions")
    problem = record.problem(spec, space.extension)
    if problem:
        raise RayError(f"chunk {spec.index} from its Ray worker {problem}")
    if len(result.data) != record.bytes or hashlib.sha256(result.data).hexdigest() != record.sha256:
        raise RayError(f"chunk {spec.index} arrived from its Ray worker damaged (size or sha256 differ)")
    space.store(record, result.data)
