"""What runs inside a Ray worker: a model loaded once, then chunks (upscale) or clips (eval).

The classes are plain Python; :mod:`stdan_cli.cluster.pool` makes them Ray actors. A worker
receives the input video and the weights as bytes (from Ray's object store, once per worker)
or reads them at a path every node shares, keeps them in a private temporary folder, and
answers each chunk with its encoded file's bytes and done record: never raw frames.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from stdan_cli import __version__
from stdan_cli.model import ModelDescriptor


@dataclass(frozen=True)
class WorkerSpec:
    """How every worker builds its upscaler (``build_upscaler``'s arguments, weights apart)."""

    model: str
    device: str
    precision: str
    threads: int
    backend: str = "torch"  # --backend


@dataclass(frozen=True)
class Payload:
    """A file a worker needs: its bytes (an object-store value) or a path every node can read."""

    name: str
    data: bytes | None = None
    path: str | None = None

    def materialise(self, folder: Path) -> Path:
        if self.path is not None:
            return Path(self.path)
        target = folder / self.name
        target.write_bytes(self.data)
        return target


@dataclass(frozen=True)
class WorkerDescription:
    """What the driver records in the manifest and checks all workers agree on."""

    version: str
    name: str
    precision: str
    device_type: str
    descriptor: ModelDescriptor
    weights_sha256: str | None
    # Bytes one window may use on this worker's device (its free memory now): the driver plans
    # tiles with the smallest of these, since it may have no such device itself.
    memory_budget: int = field(default=0, compare=False)
    # Why --precision auto chose ``precision`` (workers may name different native features).
    precision_why: str = field(default="", compare=False)


@dataclass(frozen=True)
class ChunkResult:
    record: object  # the chunk's DoneRecord, as the worker wrote it
    data: bytes  # the chunk file's bytes


class _Worker:
    def __init__(self, spec: WorkerSpec, weights: Payload | None):
        from stdan_cli.upscalers import build_upscaler

        self.folder = Path(tempfile.mkdtemp(prefix="stdan-worker-"))
        weights_path = weights.materialise(self.folder) if weights is not None else None
        self.upscaler = build_upscaler(spec.model, weights_path, spec.device, spec.precision, spec.threads,
                                       spec.backend)

    def describe(self) -> WorkerDescription:
        from stdan_cli.upscalers import weights_identity
        from stdan_cli.upscalers.device import memory_budget

        u = self.upscaler
        return WorkerDescription(__version__, u.name, u.precision, u.device.type, u.descriptor, weights_identity(u),
                                 memory_budget(u.device), u.precision_why)

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class ChunkWorker(_Worker):
    """Makes chunks of one job's input."""

    def __init__(self, spec: WorkerSpec, weights: Payload | None, video: Payload):
        super().__init__(spec, weights)
        self.input = video.materialise(self.folder)

    def input_path(self) -> str:
        return str(self.input)

    def make_chunk(self, job, index: int) -> ChunkResult:
        """Chunk ``index`` of ``job`` (the driver's job, planned; its input and work folder are
        replaced by this worker's copy and private folder), decoded from the chunk's first frame
        on (a notice on the worker's log, which Ray shows on the driver, when it cannot seek there)."""
        from stdan_cli.jobs import Workspace
        from stdan_cli.jobs.runner import make_one_chunk

        local = replace(job, plan=replace(job.plan, input=self.input), work_dir=self.folder / "work")
        space = Workspace(local.work_dir, local.chunk_format.extension)
        try:
            space.reset()  # a chunk left by an earlier call is made again: this folder is the worker's own
            make_one_chunk(local, space, index, self.upscaler, notify=lambda line: print(line, file=sys.stderr))
            record = space.done.get(index)
            if record is None:
                raise ValueError(f"the job has no chunk {index}")
            data = space.chunk_path(index).read_bytes()
            if hashlib.sha256(data).hexdigest() != record.sha256:
                raise OSError(f"chunk {index} changed on the worker's disk after it was written")
            space.discard(index)
        finally:
            space.close()
        return ChunkResult(record, data)


class ClipWorker(_Worker):
    """Scores evaluation clips whose frames it receives as bytes."""

    def evaluate(self, name: str, gt: list[tuple[str, bytes]], lr: dict[int, tuple[str, bytes]] | None,
                 dataset: str, degradation: str, save: bool):
        """The clip's :class:`~stdan_cli.evaluation.runner.ClipResult` and, with ``save``, its
        output PNGs as (relative path, bytes)."""
        from stdan_cli.evaluation.datasets import Clip
        from stdan_cli.evaluation.runner import evaluate_clip
        from stdan_cli.evaluation.saved_images import ImageFolder

        folder = Path(tempfile.mkdtemp(dir=self.folder))
        try:
            def put(sub: str, file: str, data: bytes) -> Path:
                path = folder / sub / file
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                return path

            clip = Clip(name, tuple(put("gt", f, d) for f, d in gt),
                        {i: put("lr", f, d) for i, (f, d) in lr.items()} if lr is not None else None)
            save_dir = folder / "saved" if save else None  # this worker's own new folder
            if save_dir is not None:
                save_dir.mkdir()
            result = evaluate_clip(clip, dataset, self.upscaler, degradation,
                                   ImageFolder(save_dir) if save_dir is not None else None)
            images = []
            if save_dir is not None:
                images = [(p.relative_to(save_dir).as_posix(), p.read_bytes())
                          for p in sorted(save_dir.rglob("*.png"))]
            return result, images
        finally:
            shutil.rmtree(folder, ignore_errors=True)
