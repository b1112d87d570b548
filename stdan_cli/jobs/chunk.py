"""Encoding one chunk: its output frames, with the final codec settings, into one file.

The file starts on a keyframe (a fresh encoder per chunk) and carries the frames' final
timestamps. It is written under a random name created exclusively in the work folder, flushed
and renamed to its derived name; then its done record (frames, bytes, sha256, times) is
written the same way. Encoding runs in a background thread beside
the model, as in a single pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import torch

from stdan_cli.jobs.manifest import DoneRecord, chunk_name, file_sha256
from stdan_cli.jobs.plan import ChunkSpec
from stdan_cli.jobs.workspace import Workspace
from stdan_cli.pipeline.background import SerialWorker
from stdan_cli.safe_files import remove_file, sync_file
from stdan_cli.video.colour import ColourInfo
from stdan_cli.video.encode import VideoWriter
from stdan_cli.video.encoders import Container, ResolvedEncoding


@dataclass(frozen=True)
class ChunkFormat:
    """What every chunk file of a job shares: size, timing, codec, colour, container."""

    width: int
    height: int
    rate: Fraction
    time_base: Fraction
    encoding: ResolvedEncoding
    colour: ColourInfo
    rotation: int
    sar: Fraction | None  # the input's pixel aspect, kept
    container: Container
    extension: str  # of the output, e.g. ".mp4"


class ChunkEncoder:
    """Writes one chunk: :meth:`write` each output frame, then :meth:`finish` (or :meth:`abort`)."""

    def __init__(self, space: Workspace, index: int, fmt: ChunkFormat):
        self.space = space
        self.index = index
        self.name = chunk_name(index, fmt.extension)
        self.temp = space.new_file(self.name)
        self.writer = VideoWriter(
            self.temp, fmt.width, fmt.height, fmt.rate, fmt.time_base, fmt.encoding, fmt.colour, fmt.container,
            fmt.rotation, sar=fmt.sar,
        )
        self.worker = SerialWorker()
        self.pending: tuple[torch.Tensor, int] | None = None  # written once the next frame is known
        self.frames = 0
        self.start: int | None = None

    def write(self, rgb: torch.Tensor, pts: int) -> None:
        if self.start is None:
            self.start = pts
        if self.pending is not None:
            self.worker.submit(self.writer.write, *self.pending)
        self.pending = (rgb, pts)
        self.frames += 1

    def repeat(self, pts: int) -> None:
        """The previous frame again at ``pts``."""
        self.write(self.pending[0], pts)

    def finish(self, spec: ChunkSpec, hold: int) -> DoneRecord:
        """Encode the last frame (shown for ``hold``), close, flush, rename, record."""
        end = self.pending[1] + hold
        self.worker.submit(self.writer.write, *self.pending, hold=hold)
        self.pending = None
        self.worker.finish()
        self.writer.close()
        sync_file(self.temp)
        if (self.frames, self.start, end) != (spec.outputs, spec.start, spec.end):
            raise AssertionError(f"chunk {spec.index} wrote {self.frames} frames from {self.start} to {end}, "
                                 f"planned {spec.outputs} from {spec.start} to {spec.end}")
        record = DoneRecord(spec, self.name, self.frames, self.temp.stat().st_size, file_sha256(self.temp),
                            self.start, end)
        self.space.commit(self.temp, self.name)
        self.space.store(record)
        return record

    def abort(self) -> None:
        self.worker.cancel()
        self.writer.abort()
        remove_file(self.temp)
