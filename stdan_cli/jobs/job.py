"""A job: everything decided before work starts, pinned down by its manifest.

:func:`prepare_job` turns an :class:`~stdan_cli.pipeline.plan.UpscalePlan` (with its
options) and a description of the upscaler into a :class:`Job`: the work folder, the chunk
format, the scene source, the manifest a resumed run must match, and the output frames the
range and mode give.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from stdan_cli import __version__
from stdan_cli.jobs.chunk import ChunkFormat
from stdan_cli.jobs.manifest import Manifest, file_sha256, input_identity
from stdan_cli.jobs.workspace import default_work_dir
from stdan_cli.pipeline.options import CHUNK_SECONDS, option_names
from stdan_cli.pipeline.plan import UpscalePlan
from stdan_cli.pipeline.scenes import SceneList, cut_source, read_scene_list
from stdan_cli.pipeline.windows import window_count
from stdan_cli.upscalers import Upscaler, weights_identity

__all__ = ["CHUNK_SECONDS", "Job", "JobSummary", "prepare_job"]


@dataclass
class JobSummary:
    """What a finished job reports."""

    input: Path
    output: Path
    frames_in: int
    frames_out: int
    size_in: tuple[int, int]
    size_out: tuple[int, int]
    rate_out: Fraction
    seconds: float
    tiles: int
    warnings: list[str]
    notices: list[str]
    scenes: int = 1
    chunks: int = 1
    resumed: int = 0  # chunks a previous run had completed
    made: int = 0  # chunks this run made
    frames_made: int = 0  # output frames this run made
    workers: int | None = None  # Ray workers, when the chunks were made on a cluster
    retried: int = 0  # chunks handed out again after their worker died
    cut_frames: list[int] = field(default_factory=list)  # input frames (0-based) where a scene after a cut starts


@dataclass
class Job:
    """Everything decided before work starts; the manifest pins it down."""

    plan: UpscalePlan  # input, output, options, encoding, tiles, timing
    work_dir: Path
    manifest: Manifest
    chunk_frames: int
    chunk_format: ChunkFormat
    scenes: SceneList | None
    expected: int | None  # output frames, when the container says how many frames the input has
    expected_windows: int | None = None  # model windows of the whole job (scene cuts add a few)

    @property
    def input(self) -> str:
        return self.plan.input

    @property
    def output(self) -> Path:
        return self.plan.output

    @property
    def options(self):
        return self.plan.options

    def cut_source(self):
        return cut_source(self.options.scene_threshold, self.scenes)


def prepare_job(plan: UpscalePlan, upscaler: Upscaler) -> Job:
    """Decide everything the manifest records for ``plan`` (from :func:`stdan_cli.pipeline.plan_upscale`)."""
    options, info = plan.options, plan.info
    work_dir = Path(options.work_dir) if options.work_dir else default_work_dir(plan.output)
    scenes = read_scene_list(options.scenes_file) if options.scenes_file is not None else None
    chunk_frames = options.chunk_frames or max(options.window, round(CHUNK_SECONDS * info.rate))
    width, height = plan.size_out
    chunk_format = ChunkFormat(width, height, plan.rate_out, plan.time_base, plan.encoding, plan.colour, info.rotation,
                               info.sar, plan.container, plan.output.suffix)
    tiled = len(plan.tiles) > 1
    manifest = Manifest(
        input=_input_identity(plan.input),
        options=option_names(dict(
            mode=options.mode, window=options.window, stride=options.stride,
            tiles=[list(t.__dict__.values()) for t in plan.tiles] if tiled else None,
            codec=plan.encoding.codec, pix_fmt=plan.encoding.pix_fmt, crf=plan.encoding.options.get("crf"),
            preset=plan.encoding.options.get("preset"), encoder_options=plan.encoding.options,
            container=plan.container.format, outscale=options.outscale, compare=options.compare,
            deinterlace=options.deinterlace, video_filter=options.video_filter,
            scene_threshold=None if scenes is not None else options.scene_threshold,
            scenes_file=file_sha256(Path(options.scenes_file)) if scenes is not None else None,
            chunk_frames=chunk_frames, start=options.start, end=options.end,
        )),
        model=option_names(dict(model=upscaler.name, precision=upscaler.precision,
                                weights_sha256=weights_identity(upscaler))),
        version=__version__, left_out=_left_out(options), extension=chunk_format.extension,
    )
    inputs = _expected_inputs(plan)
    return Job(
        plan=plan, work_dir=work_dir, manifest=manifest, chunk_frames=chunk_frames, chunk_format=chunk_format,
        scenes=scenes, expected=plan.mode.count(inputs) if inputs else None,
        expected_windows=_expected_windows(inputs, options),
    )


def _left_out(options) -> list[str]:
    """The recorded options whose value is a default because the user did not give them."""
    given = option_names(dict(chunk_frames=options.chunk_frames, codec=options.encoding.codec,
                              pix_fmt=options.encoding.pix_fmt, crf=options.encoding.crf,
                              preset=options.encoding.preset))
    return sorted(key for key, value in given.items() if value is None)


def _input_identity(source: str) -> dict:
    """A local file by size, time and content; an image-sequence pattern or a URL by its name."""
    path = Path(source)
    if path.is_file():
        return {"path": str(path.resolve()), **input_identity(path)}
    return {"source": source}


def _expected_windows(inputs: int | None, options) -> int | None:
    """The windows the model will run for ``inputs`` frames: windows are laid from the scene's
    first frame, so a range that starts inside the video usually needs one more window before it
    (an estimate: each scene cut adds about one too)."""
    if not inputs:
        return None
    return window_count(inputs, options.window, options.stride) + (1 if options.start else 0)


def _expected_inputs(plan: UpscalePlan) -> int | None:
    """The input frames the run will read (in the range), when the container says."""
    from stdan_cli.video.frame_count import frames_in_range

    info, options = plan.info, plan.options
    exact = Path(plan.input).is_file() and not options.video_filter  # a filter may change the count
    counted = frames_in_range(plan.input, options.start, options.end) if exact else None
    if counted is not None:  # exact, from the packets' times
        return counted or None
    if not info.frame_count:
        return None
    n = info.frame_count
    if options.has_range:
        first = math.ceil((options.start or 0) * info.rate)
        last = n if options.end is None else min(n, math.ceil(options.end * info.rate))
        n = max(0, last - first)
    return n or None
