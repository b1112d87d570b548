"""Many inputs, one output folder: ``stdan upscale IN... OUTDIR/`` and ``stdan upscale INDIR OUTDIR``.

Each video becomes ``OUTDIR/<input stem>.<ext>``: the input's extension when it names a
container we write, else ``.mkv`` (``ext`` overrides). Every output is planned before any work:
a batch where an output would be one of its inputs, or two inputs would share an output, is
refused whole (with ``-y`` too), so no item can replace another's input. An output already
there is skipped unless ``overwrite``; a file that fails does not stop the others; every file gets a
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
            others = [p.name for p in files if p not in videos]
            if others:
                notices.append(f"{_count_files(len(others))} of {source} {'is' if len(others) == 1 else 'are'} "
                               f"not video and left out: {_some(others)}")
            sources += [str(p) for p in videos]
        else:
            sources.append(display(source))
    if not sources:
        raise OutputError(f"no video to upscale in {', '.join(inputs)}")
    outputs = [out_dir / output_name(source, ext) for source in sources]
    check_apart(sources, outputs)
    items = [BatchItem(source, output, "output exists (pass -y to replace it)" if output.exists() and not overwrite
                       else None) for source, output in zip(sources, outputs)]
    return items, notices


def check_apart(sources: list[str], outputs: list[Path]) -> None:
    """Refuse a batch in which an output is one of the inputs or two inputs share an output
    (one would replace or take the other's file, whatever the order)."""
    local = [Path(s) for s in sources if is_local_file(s)]
    for source, output in zip(sources, outputs):
        for other in local:
            if _same_file(output, other):
                raise OutputError(f"the output {output} of {source} would replace the input {other}; "
                                  "pass another output folder or --ext")
    seen: dict[Path, str] = {}
    for source, output in zip(sources, outputs):
        key = output.resolve()
        if key in seen:
            raise OutputError(f"{seen[key]} and {source} would both be written to {output}; "
                              "pass them in separate commands or rename one")
        seen[key] = source


def _same_file(a: Path, b: Path) -> bool:
    """One file by its name (after resolving links) or, when both exist, by device and inode
    (hard links, case-insensitive file systems)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


SHOWN_NAMES = 5  # names a notice lists before "and N more"


def _count_files(n: int) -> str:
    return f"{n} file{'' if n == 1 else 's'}"


def _some(names: list[str]) -> str:
    """'a.txt, b.srt and 3 more': the first few names of a list."""
    shown = ", ".join(names[:SHOWN_NAMES])
    return shown + (f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else "")


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


def run_batch(items: list[BatchItem], upscaler: Upscaler | None, options: UpscaleOptions,
              on_file: FileFn | None = None, progress: ProgressFn | None = None,
              notify: Callable[[str], None] = lambda line: None) -> list[BatchResult]:
    """Upscale each item in turn with one upscaler (None when every item is skipped); a failing
    file is recorded, not raised."""
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
