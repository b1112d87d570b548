"""Planning a job while the input is decoded: scenes, their windows, and chunks of windows.

:class:`JobPlanner` is fed the decoded frames in order and answers with the work they make
ready: model windows (with the output frames each one keeps and their timestamps), the
repeated frame at a cut, and the end of each chunk. The plan is a deterministic function of
the frames, the options and the chunk length, so a resumed run re-derives the same chunks.

- A cut (from ``stdan_cli.pipeline.scenes``) closes the current scene: its last window is
  aligned to the scene's end (a scene shorter than a window repeats its last frame), and the
  in-between output across the cut is the scene's last output again, never a blend. Output
  positions and timestamps are those of a run without cuts.
- A chunk is whole windows of one scene; it ends before the first window after it reached
  ``chunk_frames`` input frames, at a cut (after the repeated frame), or at the end. A frame two windows share is made
  by the first window only, so every output frame belongs to exactly one chunk.
- A time range keeps the outputs of the input frames with start <= t < end (t from the first
  frame); windows are those of the whole video, so a range gives exactly the whole run's
  frames there. Timestamps of a range start at 0.
- A complete plan has a :class:`SeekTable`: for each chunk, its first frame's timestamp and
  pixels' digest and its scene's first frame, with the cuts and the range's start. With it,
  :meth:`JobPlanner.at_chunk` continues the planning from a chunk's first frame (decoded after a
  seek) and gives that chunk's tasks exactly as a planner fed from the input's first frame:
  a chunk's windows read no frame before its first, and the window grid, the outputs already
  made and the chunk and scene numbers are known from the table.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Union

from stdan_cli.jobs import strict_json
from stdan_cli.pipeline.options import UpscaleOptions
from stdan_cli.pipeline.scenes import CutSource, ListedCuts, SceneList
from stdan_cli.pipeline.windows import Window, WindowScheduler
from stdan_cli.video.decode import Frame


@dataclass(frozen=True)
class ChunkSpec:
    index: int
    scene: int
    first_frame: int  # first input frame its windows read
    last_frame: int  # last input frame its windows read (repeated frames excluded)
    first_output: int  # position (half frames, in the whole video's numbering) of its first output
    outputs: int  # output frames it writes
    start: int  # pts of its first output frame (the output's time base)
    end: int  # where its last output frame ends: the next chunk's start

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object, where: str = "chunk") -> "ChunkSpec":
        """A chunk as a work folder recorded it (raises ``strict_json.Damaged`` when it is not one)."""
        data = strict_json.obj(data, where)
        return cls(**{k: strict_json.get(data, k, "int" if k in ("start", "end") else "nat", where)
                      for k in cls.__dataclass_fields__})


def frame_digest(frame: Frame) -> str:
    """sha256 of a decoded frame's RGB values: what a seek must reach again."""
    return hashlib.sha256(memoryview(frame.rgb.contiguous().numpy()).cast("B")).hexdigest()  # no copy


@dataclass(frozen=True)
class ChunkStart:
    """Where decoding may start to make a chunk: its first frame (index, timestamp in the
    input's time base, digest of its RGB), which a seek must reach exactly, and the first
    frame of its scene (where the window grid starts)."""

    frame: int
    pts: int
    sha256: str
    scene_start: int


@dataclass(frozen=True)
class SeekTable:
    """What planning from a chunk's first frame needs of the frames before it (see
    :meth:`JobPlanner.at_chunk`): the input's first timestamp, the range's first frame and its
    timestamp, the cuts (frames that start a scene) and every chunk's :class:`ChunkStart`;
    and the input frames in the range (what a run that decodes only some chunks reports)."""

    pts0: int
    first_in_range: int
    origin: int
    cuts: tuple[int, ...]
    starts: tuple[ChunkStart, ...]
    range_frames: int

    def to_dict(self) -> dict:
        return {"pts0": self.pts0, "first_in_range": self.first_in_range, "origin": self.origin,
                "cuts": list(self.cuts), "starts": [asdict(c) for c in self.starts], "range_frames": self.range_frames}

    @classmethod
    def from_dict(cls, data: object, where: str = "seek") -> "SeekTable":
        """A table as a work folder recorded it (raises ``strict_json.Damaged`` when it is not one)."""
        data = strict_json.obj(data, where)
        cuts = strict_json.get(data, "cuts", "list", where)
        if not all(type(c) is int and c > 0 for c in cuts) or cuts != sorted(set(cuts)):
            raise strict_json.Damaged(f"{where}: cuts are not increasing frame numbers")
        starts = []
        for i, item in enumerate(strict_json.get(data, "starts", "list", where)):
            at = f"{where}.starts[{i}]"
            item = strict_json.obj(item, at)
            digest = strict_json.get(item, "sha256", "str", at)
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise strict_json.Damaged(f"{at}: sha256 is not a digest")
            starts.append(ChunkStart(strict_json.get(item, "frame", "nat", at), strict_json.get(item, "pts", "int", at),
                                     digest, strict_json.get(item, "scene_start", "nat", at)))
        return cls(strict_json.get(data, "pts0", "int", where), strict_json.get(data, "first_in_range", "nat", where),
                   strict_json.get(data, "origin", "int", where), tuple(cuts), tuple(starts),
                   strict_json.get(data, "range_frames", "nat", where))

    def fits(self, chunks: list[ChunkSpec]) -> bool:
        """Whether the table describes ``chunks`` (one start each, at its first frame, in its scene)."""
        return (len(self.starts) == len(chunks)
                and all(s.frame == c.first_frame and s.scene_start <= s.frame for s, c in zip(self.starts, chunks)))


@dataclass
class WindowTask:
    """Run the model on ``frames`` (outputs from ``skip`` on) and keep ``keep``: pairs of
    (index into the computed outputs, output pts)."""

    chunk: int
    first_frame: int  # the chunk's first input frame (to recognise a chunk done before)
    window: Window  # in the whole video's frame numbering
    frames: list[Frame]
    skip: int
    keep: list[tuple[int, int]]


@dataclass
class RepeatTask:
    """Write the previous output frame again at ``pts`` (the in-between frame at a cut)."""

    chunk: int
    pts: int


@dataclass
class ChunkEnd:
    """The chunk is complete; its last frame lasts ``hold`` (output time base)."""

    spec: ChunkSpec
    hold: int


Task = Union[WindowTask, RepeatTask, ChunkEnd]


@dataclass
class _OpenChunk:
    index: int
    scene: int
    first_frame: int
    last_frame: int
    first_output: int
    outputs: int = 0
    frames: int = 0  # input frames whose own output (even position) it holds
    last_position: int = -1
    last_frame_seen: Frame | None = None  # the input frame of its last output
    first_pts: int = 0
    last_pts: int = 0


@dataclass
class JobPlanner:
    """Feed decoded frames with :meth:`push`, then call :meth:`finish`; both return the
    :data:`Task` list that became ready. ``cuts`` is a source from ``pipeline.scenes``;
    ``chunk_frames`` the input frames a chunk should cover (at least one window's worth)."""

    settings: UpscaleOptions  # mode, window, stride, start, end
    chunk_frames: int
    cuts: CutSource
    time_base: Fraction
    chunks: int = 0  # chunks planned so far
    scenes: int = 0  # scenes started so far
    complete: bool = False  # every output of the range is planned; later frames are not needed
    frames_seen: int = 0
    _held: deque = field(default_factory=deque)  # (index, frame) waiting for the cut decision
    _cuts: set = field(default_factory=set)
    _sched: WindowScheduler | None = None
    _scene_start: int = 0
    _scene_frames: dict = field(default_factory=dict)  # index -> Frame of the scene's last frames
    _chunk: _OpenChunk | None = None
    _pts0: int | None = None
    _first_in_range: int | None = None
    _last_in_range: int | None = None  # known once a frame past the end (or the end) is seen
    _next_position: int | None = None  # the next output position expected (checks continuity)
    _origin: int = 0  # pts of the range's first frame
    _skip_before: int = 0  # windows starting before this frame belong to chunks another planner made
    cut_frames: list = field(default_factory=list)  # frames that started a scene, in order
    starts: list = field(default_factory=list)  # ChunkStart of each chunk planned

    @classmethod
    def at_chunk(cls, settings: UpscaleOptions, chunk_frames: int, time_base: Fraction, table: SeekTable,
                 spec: ChunkSpec) -> "JobPlanner":
        """A planner that continues a complete plan at chunk ``spec``: fed the frames from its
        first frame on, it gives the tasks of that chunk and the ones after exactly as a planner
        fed every frame would. The state the frames before would have built is set from
        ``table``: the frame count, the input's and the range's first timestamps, the cuts still
        to come, the chunk and scene numbers, the window grid and the outputs already made
        (:meth:`WindowScheduler.after`); windows that start before the chunk are dropped."""
        start = table.starts[spec.index]
        first = start.frame
        later_cuts = SceneList(frames=frozenset(c for c in table.cuts if c > first))
        planner = cls(settings, chunk_frames, ListedCuts(later_cuts), time_base)
        planner.frames_seen, planner._pts0 = first, table.pts0
        if table.first_in_range < first:
            planner._first_in_range, planner._origin = table.first_in_range, table.origin
        planner.chunks, planner._next_position, planner._skip_before = spec.index, spec.first_output, first
        if start.scene_start == first:  # the chunk starts its scene: its first frame opens it
            planner.scenes = spec.scene
        else:
            planner.scenes, planner._scene_start = spec.scene + 1, start.scene_start
            planner._sched = WindowScheduler.after(first - start.scene_start, settings.window, settings.stride)
        return planner

    def seek_table(self) -> SeekTable | None:
        """The table of the complete plan (None before the plan is complete or with no frame in range)."""
        if not self.complete or self._first_in_range is None:
            return None
        return SeekTable(self.pts0, self._first_in_range, self._origin, tuple(self.cut_frames), tuple(self.starts),
                         self.range_frames)

    # --- what is known about the range ----------------------------------------------------

    @property
    def pts0(self) -> int:
        """pts of the input's first frame (times are counted from it)."""
        return self._pts0 or 0

    @property
    def first_in_range(self) -> int | None:
        return self._first_in_range

    @property
    def origin_pts(self) -> int:
        """pts of the range's first frame: time 0 of a range's output."""
        return self._origin

    @property
    def range_frames(self) -> int:
        """Input frames in the range (so far)."""
        if self._first_in_range is None:
            return 0
        last = self._last_in_range if self._last_in_range is not None else self.frames_seen - 1
        return last - self._first_in_range + 1

    # --- frames in -------------------------------------------------------------------------

    def seconds(self, frame: Frame) -> float:
        return float((frame.pts - self._pts0) * self.time_base)

    def push(self, frame: Frame) -> list[Task]:
        if self.complete:
            return []
        index = self.frames_seen
        self.frames_seen += 1
        if self._pts0 is None:
            self._pts0 = frame.pts
        t = self.seconds(frame)
        s = self.settings
        if (s.start is None or t >= s.start) and (s.end is None or t < s.end):
            if self._first_in_range is None:
                self._first_in_range, self._origin = index, frame.pts
        elif self._first_in_range is not None and self._last_in_range is None:
            self._last_in_range = index - 1
        self._cuts.update(self.cuts.push(index, t, frame.rgb))
        self._held.append((index, frame))
        tasks = self._check_complete()
        while self._held and self._held[0][0] <= index - self.cuts.latency and not self.complete:
            tasks += self._release(*self._held.popleft())
        return tasks

    def finish(self) -> list[Task]:
        """The input ended: decide the last cuts, close the last scene and the last chunk."""
        if self.complete:
            return []
        self._cuts.update(self.cuts.finish())
        if self._first_in_range is not None and self._last_in_range is None:
            self._last_in_range = self.frames_seen - 1
        tasks: list[Task] = []
        while self._held:
            tasks += self._release(*self._held.popleft())
        if self._sched is not None and not self.complete:
            tasks += self._windows(self._sched.finish())
        tasks += self._close_chunk(final=True)
        self.complete = True
        return tasks

    # --- scenes and windows ----------------------------------------------------------------

    def _release(self, index: int, frame: Frame) -> list[Task]:
        tasks: list[Task] = []
        if self.complete:
            return tasks
        if index in self._cuts and self._sched is not None:
            tasks += self._windows(self._sched.finish())
            if self.complete:
                return tasks
            tasks += self._repeat_at_cut(index, frame)
            tasks += self._check_complete()
            if self.complete:
                return tasks
            tasks += self._close_chunk(final=False, following={index: frame})
            self._sched = None
            self._cuts.discard(index)
            self.cut_frames.append(index)
        if self._sched is None:
            self._sched = WindowScheduler(self.settings.window, self.settings.stride)
            self._scene_start = index
            self._scene_frames = {}
            self.scenes += 1
        self._scene_frames[index] = frame
        for old in [k for k in self._scene_frames if k < index - self.settings.window]:
            del self._scene_frames[old]
        if not self.complete:
            tasks += self._windows(self._sched.push(frame))
        return tasks

    def _in_range(self, position: int) -> bool:
        """Whether output ``position`` is kept (its frames lie in the range), as far as known."""
        first = self._first_in_range
        if first is None or position < 2 * first:
            return False
        last = self._last_in_range
        return last is None or position <= 2 * last

    def _windows(self, ready) -> list[Task]:
        """Tasks for the windows the scheduler made ready."""
        tasks: list[Task] = []
        for local, frames in ready:
            a = self._scene_start
            win = Window(local.start + a, tuple(i + a for i in local.inputs), local.skip, local.emit)
            if win.start < self._skip_before:
                continue
            positions = list(range(win.first_output, win.first_output + win.emit))
            kept = [p for p in positions if self._in_range(p)]
            inputs_only = self.settings.mode_row.inputs_only
            if inputs_only:
                kept = [p for p in kept if p % 2 == 0]
            if not kept:
                continue
            # Outputs before the first kept one are not computed (as for the frame a previous
            # window shares); the model's outputs do not depend on how many are skipped.
            skip = kept[0] - 2 * win.start
            by_index = dict(zip(win.inputs, frames))
            if self._chunk is not None and self._chunk.frames >= self.chunk_frames:
                # closed only now, so that a scene's last chunk keeps the repeated frame at its cut
                tasks += self._close_chunk(final=False, following=by_index)
            chunk = self._open_chunk(win.start, by_index[win.start])
            computed = [p for p in range(2 * win.start + skip, win.first_output + win.emit)
                        if not (inputs_only and p % 2)]
            keep = [(computed.index(p), self._pts(p, by_index)) for p in kept]
            tasks.append(WindowTask(chunk.index, chunk.first_frame, win, list(frames), skip, keep))
            for (_, pts), p in zip(keep, kept):
                self._count(chunk, p, by_index[p // 2], pts)
            chunk.last_frame = max(chunk.last_frame, max(win.inputs))
            tasks += self._check_complete()
            if self.complete:
                return tasks
        return tasks

    def _repeat_at_cut(self, cut: int, first_of_next: Frame) -> list[Task]:
        """The in-between output across a cut: the earlier scene's last output again."""
        position = 2 * cut - 1
        if self._chunk is None or self.settings.mode_row.inputs_only or not self._in_range(position):
            return []
        last = self._scene_frames[cut - 1]
        pts = self._pts(position, {cut - 1: last, cut: first_of_next})
        self._count(self._chunk, position, last, pts)
        return [RepeatTask(self._chunk.index, pts)]

    def _check_complete(self) -> list[Task]:
        """Once every output of the range is planned, close the last chunk (no later frame is needed)."""
        last = self._last_in_range
        if self.complete or last is None or self._next_position is None or self._next_position <= 2 * last:
            return []
        self.complete = True
        return self._close_chunk(final=True)

    # --- chunks ----------------------------------------------------------------------------

    def _open_chunk(self, first_frame: int, frame: Frame) -> _OpenChunk:
        if self._chunk is None:
            self._chunk = _OpenChunk(self.chunks, self.scenes - 1, first_frame, first_frame, -1)
            self.chunks += 1
            self.starts.append(ChunkStart(first_frame, frame.pts, frame_digest(frame), self._scene_start))
        return self._chunk

    def _count(self, chunk: _OpenChunk, position: int, frame: Frame, pts: int) -> None:
        step = 2 if self.settings.mode_row.inputs_only else 1
        if self._next_position is not None and position != self._next_position:
            raise AssertionError(f"output {position} planned after {self._next_position - step}")
        if chunk.outputs == 0:
            chunk.first_output, chunk.first_pts = position, pts
        chunk.last_pts = pts
        self._next_position = position + step
        chunk.outputs += 1
        chunk.frames += position % 2 == 0
        chunk.last_position = position
        chunk.last_frame_seen = frame

    def _close_chunk(self, final: bool, following: dict[int, Frame] | None = None) -> list[Task]:
        """End the open chunk. Its last frame lasts until the next output (whose input frames
        are in ``following``), or, for the final chunk, as long as the input's last frame."""
        chunk, self._chunk = self._chunk, None
        if chunk is None or chunk.outputs == 0:
            return []
        mode = self.settings.mode_row
        if final:
            hold = mode.hold(chunk.last_frame_seen.duration)
        else:
            p = chunk.last_position
            k = p // 2
            frames = {k: chunk.last_frame_seen, **(following or {})}
            nxt = self._next_position
            hold = mode.pts(nxt, lambda i: frames[i].pts) - mode.pts(p, lambda i: frames[i].pts)
        spec = ChunkSpec(chunk.index, chunk.scene, chunk.first_frame, chunk.last_frame, chunk.first_output, chunk.outputs,
                         chunk.first_pts, chunk.last_pts + hold)
        return [ChunkEnd(spec, hold)]

    # --- timestamps ------------------------------------------------------------------------

    def _pts(self, position: int, frames: dict[int, Frame]) -> int:
        """pts of output ``position`` by the mode's rule; a range's output starts at 0."""
        mode = self.settings.mode_row
        pts = mode.pts(position, lambda k: frames[k].pts)
        if self.settings.has_range:
            first = 2 * self._first_in_range
            pts -= mode.pts(first, lambda k: self._origin)
        return pts
