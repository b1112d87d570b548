"""Many inputs, one output folder: ``stdan upscale IN... OUTDIR/`` and ``stdan upscale INDIR OUTDIR``.

Each video becomes ``OUTDIR/<input stem>.<ext>``: the input's extension when it names a
container we write, else ``.mkv`` (``ext`` overrides). An output already there is skipped
unless ``overwrite``; a file that fails does not stop the others; every file gets a
:class:`BatchResult` (done, skipped or failed, with the reason). Every option of a single run
applies to each file (a time range, scenes, chunk length, ``--restart``); each file's work
folder is its own (``--work-dir`` names the folder that holds them, one per output name).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import av

from stdan_cli.errors import OptionError, OutputError, StdanError
from stdan_cli.jobs import JobSummary, run_job
from stdan_cli.jobs.runner import ProgressFn
from stdan_cli.pipeline.options import UpscaleOptions
from stdan_cli.pipeline.plan import plan_upscale, validate
from stdan_cli.upscalers import Upscaler
from stdan_cli.video.encoders import CONTAINERS, FALLBACK_EXTENSION
from stdan_cli.video.sources import display, is_local_file


@dataclass(frozen=True)
class BatchItem:
    input: str
    output: Path
    skip: str | None = None  # why it is skipped before any work (None: it runs)
    failed: bool = False  # the skip is a failure found by the checks (not an output already there)


@dataclass
class BatchResult:
    item: BatchItem
    status: str  # "done", "skipped" or "failed"
    message: str = ""
    summary: JobSummary | None = None
    seconds: float = 0.0


def item_options(options: UpscaleOptions, item: BatchItem) -> UpscaleOptions:
    """The options of one file: ``--work-dir`` holds one work folder per output name."""
    if options.work_dir is None:
        return options
    return replace(options, work_dir=Path(options.work_dir) / f"{item.output.name}.stdan-job")


def is_batch(inputs: list[str], output: str | os.PathLike) -> bool:
    """Several inputs, an input folder, or an output that is (or is written as) a folder."""
    out = os.fspath(output)
    return (len(inputs) > 1 or any(is_local_file(i) and Path(i).is_dir() for i in inputs)
            or Path(out).is_dir() or out.endswith(("/", os.sep)))


# Extensions taken as videos in an input folder even when FFmpeg cannot open them (so a damaged
# one is reported as failed, not left out); other files count when FFmpeg finds video in them.
VIDEO_EXTENSIONS = set(CONTAINERS) | {"mpg", "mpeg", "m2ts", "mts", "vob", "flv", "wmv", "asf", "3gp", "ogv", "dv",
                                      "mxf", "y4m", "rm", "rmvb", "divx", "f4v"}


def _is_video(path: Path) -> bool:
    """A file FFmpeg opens with a video stream that is not a still image, or one named like a video."""
    if path.suffix.lower().lstrip(".") in VIDEO_EXTENSIONS:
        return True
    try:
        with av.open(str(path)) as c:
            return bool(c.streams.video) and not c.format.name.endswith("_pipe") and c.format.name != "image2"
    except (av.error.FFmpegError, OSError, ValueError):
        return False


def output_name(source: str, ext: str | None) -> str:
    stem, suffix = os.path.splitext(os.path.basename(source.rstrip("/")))
    if ext is None:
        ext = suffix.lower().lstrip(".")
        if ext not in CONTAINERS:
            ext = FALLBACK_EXTENSION
    return f"{stem or 'video'}.{ext.lstrip('.')}"


def plan_batch(inputs: list[str], outdir: str | os.PathLike, ext: str | None = None,
               overwrite: bool = False) -> tuple[list[BatchItem], list[str]]:
    """The items to run and notices (files of an input folder that are not videos)."""
    if ext is not None and ext.lower().lstrip(".") not in CONTAINERS:
        raise OutputError(f"--ext {ext}: not a container we write; use one of {', '.join(CONTAINERS)}")
    out_dir = Path(outdir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir} is a file; several inputs need an output folder")
    sources: list[str] = []
    notices: list[str] = []
    for source in inputs:
        if is_local_file(source) and Path(source).is_dir():
            files = sorted(p for p in Path(source).iterdir() if p.is_file() and not p.name.startswith("."))
            videos = [p for p in files if _is_video(p)]
            if len(videos) < len(files):
                notices.append(f"{len(files) - len(videos)} file(s) of {source} are not videos and were left out")
            sources += [str(p) for p in videos]
        else:
            sources.append(display(source))
    if not sources:
        raise OutputError(f"no video to upscale in {', '.join(inputs)}")
    items, taken = [], {}
    for source in sources:
        output = out_dir / output_name(source, ext)
        if output in taken:
            items.append(BatchItem(source, output, f"{output.name} is also the output of {taken[output]}"))
        elif output.exists() and not overwrite:
            items.append(BatchItem(source, output, "output exists (pass -y to replace it)"))
        else:
            items.append(BatchItem(source, output))
        taken.setdefault(output, source)
    return items, notices


FileFn = Callable[[int, BatchItem], None]  # (index, item) when a file starts


def check_batch(items: list[BatchItem], options: UpscaleOptions) -> list[BatchItem]:
    """Check every file before a model loads: a file that cannot run is marked to skip with
    its reason. An option error (the same for every file) is raised at once."""
    checked = []
    for item in items:
        if item.skip is None:
            try:
                item.output.parent.mkdir(parents=True, exist_ok=True)
                validate(item.input, item.output, item_options(options, item))
            except StdanError as exc:
                if isinstance(exc, OptionError) and not checked:  # on the first file: the options are wrong
                    raise
                item = BatchItem(item.input, item.output, str(exc), failed=True)
            except OSError as exc:
                item = BatchItem(item.input, item.output, exc.strerror or str(exc), failed=True)
        checked.append(item)
    return checked


def run_batch(items: list[BatchItem], upscaler: Upscaler, options: UpscaleOptions,
              on_file: FileFn | None = None, progress: ProgressFn | None = None,
              notify: Callable[[str], None] = lambda line: None) -> list[BatchResult]:
    """Upscale each item in turn with one upscaler; a failing file is recorded, not raised."""
    results = []
    for index, item in enumerate(items):
        if item.skip is not None:
            results.append(BatchResult(item, "failed" if item.failed else "skipped", item.skip))
            continue
        if on_file:
            on_file(index, item)
        started = time.perf_counter()
        try:
            plan = plan_upscale(item.input, item.output, upscaler.descriptor, item_options(options, item),
                                upscaler.device)
            summary = run_job(plan, upscaler, progress=progress, notify=notify)
        except StdanError as exc:
            results.append(BatchResult(item, "failed", str(exc), seconds=time.perf_counter() - started))
        except (av.error.FFmpegError, OSError) as exc:  # the world's errors (a full disk...), one file's problem
            results.append(BatchResult(item, "failed", getattr(exc, "strerror", None) or str(exc),
                                       seconds=time.perf_counter() - started))
        else:
            results.append(BatchResult(item, "done", summary=summary, seconds=summary.seconds))
    return results
