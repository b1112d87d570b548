"""What a user chooses for one upscale: the mode table and :class:`UpscaleOptions`, the one
options model of a run (one input or a batch), checked in one place (:meth:`UpscaleOptions.check`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable

from stdan_cli.errors import OptionError
from stdan_cli.pipeline.scene_list import DEFAULT_THRESHOLD, read_scene_list
from stdan_cli.pipeline.windows import check_window
from stdan_cli.video.deinterlace import DEINTERLACE_MODES
from stdan_cli.video.encoders import EncodeSettings

# Output positions count half input frames: 2k is input frame k, 2k+1 lies between k and k+1.
SourcePts = Callable[[int], int]  # input frame index -> its pts in the input time base


SCENE_THRESHOLD = DEFAULT_THRESHOLD  # scene cuts (pipeline.scene_list): PySceneDetect's default
CHUNK_SECONDS = 10  # job chunks: default length, in seconds of input


def _midpoint_pts(position: int, source_pts: SourcePts) -> int:
    """In half the input time base: originals keep their time, in-between frames take the midpoint."""
    k = position // 2
    return 2 * source_pts(k) if position % 2 == 0 else source_pts(k) + source_pts(k + 1)


MAX_OUTSCALE = 4.0  # every model here makes 4x frames: the bound checked before one is loaded


def check_outscale(outscale: float, model_scale: float = MAX_OUTSCALE) -> None:
    if not (0 < outscale <= model_scale):
        raise OptionError(f"--outscale must be more than 0 and at most {model_scale:g} (got {outscale:g})")


@dataclass(frozen=True)
class Mode:
    """One row of the mode table: everything that differs between the modes."""

    name: str
    help: str
    inputs_only: bool  # only the outputs at the input frames' times (even positions) are made
    time_base: Callable[[Fraction, Fraction], Fraction]  # (input time base, input rate) -> output time base
    rate: Callable[[Fraction], Fraction]  # input rate -> output rate
    count: Callable[[int], int]  # input frames -> output frames
    pts: Callable[[int, SourcePts], int]  # (output position, input pts) -> output pts
    hold: Callable[[int], int]  # the last input frame's duration -> how long the last output frame lasts
    keeps_audio: bool
    duration_scale: Fraction = Fraction(1)  # output time per input time (for chapters)


MODES: dict[str, Mode] = {
    m.name: m
    for m in (
        Mode("spacetime", "4x size and 2x frame rate",
             inputs_only=False, time_base=lambda tb, rate: tb / 2, rate=lambda r: 2 * r,
             count=lambda n: 2 * n - 1, pts=_midpoint_pts, hold=lambda d: 2 * d, keeps_audio=True),
        Mode("space", "4x size, original frames only (about 20% faster: in-between frames are not decoded)",
             inputs_only=True, time_base=lambda tb, rate: tb, rate=lambda r: r,
             count=lambda n: n, pts=lambda p, src: src(p // 2), hold=lambda d: d, keeps_audio=True),
        Mode("slowmo", "every output frame at the original rate (twice as long, audio dropped)",
             inputs_only=False, time_base=lambda tb, rate: 1 / rate, rate=lambda r: r,
             count=lambda n: 2 * n - 1, pts=lambda p, src: p, hold=lambda d: 1, keeps_audio=False,
             duration_scale=Fraction(2)),
    )
}


# What each choice a job records is called where users read it (a refusal to resume, the
# manifest): the option that sets it. The job layer names choices by these keys only.
OPTION_NAMES = {
    "mode": "--mode", "window": "--window", "stride": "--stride", "tiles": "tiles (--tile/--memory-budget)",
    "codec": "--codec", "pix_fmt": "--pix-fmt", "crf": "--crf", "preset": "--preset",
    "encoder_options": "encoder options", "container": "output container", "outscale": "--outscale",
    "compare": "--compare", "deinterlace": "--deinterlace", "video_filter": "--vf",
    "scene_threshold": "--scene-threshold", "scenes_file": "--scenes", "chunk_frames": "--chunk-frames",
    "start": "--start", "end": "--end", "model": "--model", "precision": "--precision",
    "weights_sha256": "weights sha256",
}


def option_names(values: dict) -> dict:
    """``values`` (choice key -> value) keyed by the names users know the choices by."""
    return {OPTION_NAMES[key]: value for key, value in values.items()}


@dataclass(frozen=True)
class UpscaleOptions:
    mode: str = "spacetime"  # a key of MODES
    window: int = 4
    stride: int = 3
    tile: int | None = None  # core tile size in input pixels; None: automatic from memory_budget
    tile_overlap: int | None = None  # None: the model's advice
    memory_budget: float | None = None  # GiB for one window when choosing tiles; None: what the device has
    encoding: EncodeSettings = field(default_factory=EncodeSettings)
    overwrite: bool = False
    outscale: float = 4.0  # output size / input size; the model's 4x frames are resized to it
    compare: bool = False  # bicubic on the left, the model on the right, each at the output size
    deinterlace: str = "auto"  # auto: when the input is interlaced; on; off
    video_filter: str | None = None  # --vf: an FFmpeg filter chain on the decoded frames, after deinterlacing
    # The job: scenes, a time range, chunks and their work folder.
    scene_threshold: float = DEFAULT_THRESHOLD  # 0: no detection
    scenes_file: Path | None = None  # scene starts from a file instead of detection
    chunk_frames: int | None = None  # input frames per chunk; None: about CHUNK_SECONDS of input
    start: float | None = None  # seconds from the first frame
    end: float | None = None  # exclusive
    work_dir: Path | None = None  # None: .<output name>.stdan-job beside the output
    restart: bool = False  # discard the work folder's chunks

    @property
    def has_range(self) -> bool:
        return self.start is not None or self.end is not None

    def check(self) -> None:
        """Raise :class:`OptionError` for values no run can use."""
        if self.mode not in MODES:
            raise OptionError(f"unknown mode '{self.mode}'; use one of {', '.join(MODES)}")
        check_window(self.window, self.stride)
        if self.tile is not None and self.tile < 1:
            raise OptionError("--tile must be a positive number of pixels")
        if self.tile_overlap is not None and self.tile_overlap < 0:
            raise OptionError("--tile-overlap cannot be negative")
        if self.memory_budget is not None and not self.memory_budget > 0:
            raise OptionError("--memory-budget must be a positive number of GiB")
        check_outscale(self.outscale)
        if self.deinterlace not in DEINTERLACE_MODES:
            raise OptionError(f"unknown --deinterlace '{self.deinterlace}'; use one of {', '.join(DEINTERLACE_MODES)}")
        if self.video_filter is not None:
            from stdan_cli.video.vf import parse_chain

            parse_chain(self.video_filter)
        if self.chunk_frames is not None and self.chunk_frames < 1:
            raise OptionError("--chunk-frames must be at least 1")
        for name, value in (("--start", self.start), ("--end", self.end)):
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise OptionError(f"{name} must be a time of 0 or more")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise OptionError(f"--end ({self.end:g} s) must be after --start ({self.start:g} s)")
        if not (math.isfinite(self.scene_threshold) and self.scene_threshold >= 0):
            raise OptionError("--scene-threshold cannot be negative (0 turns detection off)")
        if self.scenes_file is not None:
            read_scene_list(self.scenes_file)

    @property
    def mode_row(self) -> Mode:
        return MODES[self.mode]
