"""``stdan upscale``: the options parsed into an :class:`~stdan_cli.api.UpscaleRequest`, given to
:func:`~stdan_cli.api.run_upscale` (or the batch functions), and the results printed."""

from __future__ import annotations

import io
import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import click
from rich.console import Console
from rich.progress import TextColumn
from rich.table import Table

from stdan_cli.api.choices import CHUNK_SECONDS, DEINTERLACE_MODES, MODES, SCENE_THRESHOLD, parse_time
from stdan_cli.cli.cluster import cluster_options
from stdan_cli.cli.common import backend_option, model_choice, model_options, progress_bar
from stdan_cli.cli.progress import PLAIN_INTERVAL, ProgressDisplay, speed_text
from stdan_cli.cli.scenes_out import check_scenes_out, format_time, write_scenes
from stdan_cli.errors import OptionError
from stdan_cli.progress import RunProgress

if TYPE_CHECKING:
    from stdan_cli.api import CancelToken, UpscaleRequest, UpscaleResult

# The API's run functions, the job layer, the model and PyTorch are imported inside the command,
# once the options are parsed: `stdan upscale --help` and option errors do not load them.


class TimeType(click.ParamType):
    name = "TIME"

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            return value
        try:
            return parse_time(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@contextmanager
def sigterm_interrupts() -> Iterator["CancelToken"]:
    """SIGTERM stops a run the way Ctrl-C does (completed chunks are kept). Yields the run's
    cancel token: an exception raised from a signal handler is lost when it lands in a
    finalizer, so the request is also set on the token, which the run checks at safe points."""
    from stdan_cli.api import CancelToken

    token = CancelToken()

    def interrupt(signum, frame):
        token.cancel()
        raise KeyboardInterrupt

    def unraisable(report) -> None:
        # The interrupt raised inside a finalizer (a weakref callback, __del__) is lost there and
        # Python prints it as "Exception ignored ... Traceback"; it is raised again at the next
        # check, so that report is noise for the user.
        if not (token.cancelled and issubclass(report.exc_type, KeyboardInterrupt)):
            previous_hook(report)

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (e.g. an embedding application)
        yield token
        return
    previous_hook, sys.unraisablehook = sys.unraisablehook, unraisable
    try:
        yield token
    finally:
        signal.signal(signal.SIGTERM, previous)
        sys.unraisablehook = previous_hook


@click.command("upscale")
@click.argument("paths", nargs=-1, required=True, metavar="INPUT... OUTPUT")  # str: a URL or a pattern is not a Path
@click.option("--mode", type=click.Choice(list(MODES)), default="spacetime", show_default=True,
              help="; ".join(f"{m.name}: {m.help}" for m in MODES.values()) + ".")
@model_options
@backend_option
@click.option("--window", type=int, default=4, show_default=True, help="Input frames per model window (the model was trained with 4).")
@click.option("--stride", type=int, default=3, show_default=True,
              help="Frames between window starts (1..window-1); smaller means more overlap and more work.")
@click.option("--tile", type=int, default=None,
              help="Tile size in input pixels for large frames. Default: automatic from --memory-budget.")
@click.option("--tile-overlap", type=int, default=None,
              help="Overlap between tiles in input pixels. Default: the model's advice (24 for STDAN).")
@click.option("--memory-budget", type=float, default=None, metavar="GIB",
              help="GiB one window may use when tiles are chosen automatically. Default: 85% of the GPU's "
                   "free memory (CUDA, MPS), 4 on the CPU.")
@click.option("--outscale", type=float, default=4.0, show_default=True, metavar="S",
              help="Output size as a multiple of the input size, more than 0 and at most 4: the model's 4x "
                   "frames are resized (antialiased bicubic) to round(S x input size), even where the pixel "
                   "format needs it. 1 keeps the input size at twice the frame rate.")
@click.option("--compare", is_flag=True,
              help="Side by side, each at the output size (the file is twice as wide): LEFT a plain bicubic "
                   "resize of the input with averaged in-between frames (what --model bicubic makes), RIGHT "
                   "the model. With --start/--end, a short comparison clip. Default: off.")
@click.option("--codec", default=None, metavar="ENCODER",
              help="Video encoder: any this FFmpeg has (libx264, libx265, libvpx-vp9, libsvtav1, h264_nvenc, "
                   "hevc_videotoolbox, ffv1, prores_ks, mpeg4...). Default: from OUTPUT's extension, libvpx-vp9 for "
                   ".webm, else libx264.")
@click.option("--crf", type=int, default=None,
              help="Constant-quality level. Default: 18 (x264), 20 (x265), 24 (VP9), 30 (SVT-AV1); codecs without CRF ignore it.")
@click.option("--preset", default=None, help="Encoder speed preset. Default: medium (x264/x265), 8 (SVT-AV1), else the encoder's.")
@click.option("--encoder-opt", "encoder_opts", multiple=True, metavar="KEY=VALUE",
              help="An option passed to the encoder as is (repeatable), e.g. tune=film or x265-params=aq-mode=3. "
                   "Default: none.")
@click.option("--pix-fmt", default=None,
              help="Output pixel format. Default: yuv420p, or a 10-bit format for 10-bit or HDR inputs.")
@click.option("--deinterlace", type=click.Choice(DEINTERLACE_MODES), default="auto", show_default=True,
              help="Deinterlace with bwdif before upscaling: auto (when the input is interlaced), on, off.")
@click.option("--vf", "video_filter", default=None, metavar="FILTERGRAPH",
              help="An FFmpeg filter chain run on the decoded frames before the model, as `ffmpeg -vf` would "
                   "(after deinterlacing): e.g. deblock against compression blocks, deblock,nlmeans=s=1.5 against "
                   "blocks and noise, crop=iw-16:ih-16:8:8, scale=-2:480, fps=25. The output's size and rate "
                   "follow from the frames it makes. Filters separated by commas; no [labels] or ';'. Default: none.")
@click.option("--ext", default=None,
              help="Several inputs or a folder: the outputs' extension (container). Default: the input's when it "
                   "can be written, else mkv.")
@click.option("--scene-threshold", type=float, default=SCENE_THRESHOLD, show_default=True,
              help="Cut detection: a new scene starts where the mean change of hue, saturation and luma "
                   "between two frames (each 0-255: PySceneDetect's content score) reaches this and lasts "
                   "(one-frame flashes, fades and pans are not cuts). Lower finds more cuts; 0 turns "
                   "detection off. Windows never span a cut; the in-between frame at a cut repeats the "
                   "earlier frame.")
@click.option("--scenes", "scenes_file", type=click.Path(path_type=Path), default=None, metavar="FILE",
              help="Take the scene starts from FILE instead of detecting them: one a line, a 0-based frame "
                   "number or a time (12.5, 1:02.250: the first frame at or after it), or PySceneDetect's "
                   "list-scenes CSV. Default: detect.")
@click.option("--scenes-out", type=click.Path(path_type=Path, dir_okay=False), default=None, metavar="FILE",
              help="Write the scene starts found (0-based input frame numbers, one a line, times in comments) "
                   "to FILE, in the form --scenes reads, when the run is done (never INPUT, OUTPUT or another "
                   "file the run reads; an existing FILE only with -y). Default: not written.")
@click.option("--start", type=TimeType(), default=None,
              help="Upscale only from this time on (seconds or [HH:]MM:SS[.mmm], counted from the first frame). "
                   "Output timestamps start at 0; audio and subtitles are cut to the range packet-accurately "
                   "(a packet is kept when it starts inside). The frames equal those of a full run. "
                   "Default: the beginning.")
@click.option("--end", type=TimeType(), default=None,
              help="Upscale only frames before this time (same forms as --start). Default: the end.")
@click.option("--chunk-frames", type=int, default=None, metavar="N",
              help=f"Work in chunks of about N input frames (whole windows of one scene), each kept in the "
                   f"work folder once done. Default: about {CHUNK_SECONDS} s of input, at least one window.")
@click.option("--work-dir", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Where chunks wait until the output is assembled; the same command run again resumes "
                   "from it. It must be new, empty, or a folder stdan made (it carries a marker file naming that "
                   "folder: a copied marker does not count), and must not hold INPUT or OUTPUT; stdan only ever "
                   "removes the files its manifest records there, and the folder if it made it. Several inputs: "
                   "one folder per output inside DIR. Default: .OUTPUT-NAME.stdan-job beside OUTPUT, "
                   "removed on success.")
@click.option("--restart", is_flag=True,
              help="Discard the chunks of an earlier unfinished run in the work folder and start over. "
                   "Default: resume it.")
@cluster_options
@click.option("-y", "--overwrite", is_flag=True,
              help="Replace OUTPUT (and a --scenes-out FILE) if it exists (several inputs: replace, instead of skip, "
                   "outputs already there); a link there is replaced, never followed. Default: refuse. The input "
                   "is never replaced.")
@click.option("-q", "--quiet", is_flag=True,
              help="No progress bar, summary or FFmpeg/encoder logs, only errors. Default: off.")
@click.option("--log-interval", type=click.FloatRange(min=0, min_open=True), default=PLAIN_INTERVAL, show_default=True,
              metavar="SECONDS",
              help="When stderr is not a terminal (a log file, nohup, Slurm), print a plain progress line "
                   "(phase, frames done, rate, elapsed, ETA) every SECONDS instead of the progress bar.")
def upscale(paths: tuple[str, ...], scenes_out: Path | None, quiet: bool, log_interval: float, **given):
    """Upscale INPUT to OUTPUT: 4x width and height, twice the frame rate.

    INPUT is any video FFmpeg reads (an image is a 1-frame video), an image-sequence pattern
    (img%03d.png) or a URL. Audio and subtitles are copied unchanged (audio OUTPUT's container
    cannot hold is re-encoded, e.g. AAC to Opus in WebM); colour tags, HDR
    metadata, rotation, pixel aspect, chapters, attachments and stream languages/titles are
    kept where OUTPUT's container holds them (a notice names anything dropped). Each scene is
    upscaled on its own. The work is done in chunks kept in a work folder: after Ctrl-C,
    SIGTERM or a crash, the same command continues where it stopped. The output is assembled
    beside OUTPUT and renamed when complete.

    \b
    Several videos: stdan upscale IN... OUTDIR/   or   stdan upscale INDIR OUTDIR
    Each becomes OUTDIR/<input name>.<ext>, with every option above (ranges and scenes too);
    outputs already there are skipped unless -y; a file that fails does not stop the others;
    a table sums up; exit 1 if any failed. A batch where an output would be one of its inputs,
    or two inputs would share an output, is refused before any work.

    A file name that starts with '-' (e.g. -y.mp4) would be read as an option: put -- before
    the file names (stdan upscale --model bicubic -- -y.mp4 out.mp4) or write ./-y.mp4.
    """
    progress = RunProgress()  # the run's clock starts with the command
    if len(paths) < 2:
        raise click.UsageError("give INPUT and OUTPUT (or several inputs and an output folder)")
    from stdan_cli.api.upscale import check_request, files_read

    request = _request(paths, quiet, given)
    check_request(request)  # a mistake is refused before PyTorch loads
    console = Console(stderr=True, quiet=quiet)
    if request.is_batch:
        if scenes_out is not None:
            raise OptionError("--ray, --part and --scenes-out take one INPUT and one OUTPUT")
        return _batch(request, console)
    if scenes_out is not None:
        check_scenes_out(scenes_out, Path(request.output), files_read(request), request.options.overwrite)
    from stdan_cli.api import run_upscale

    display = ProgressDisplay(console, progress, quiet, log_interval)
    with sigterm_interrupts() as cancel:
        result = run_upscale(request, progress, notify=display.print, cancel=cancel, display=display)
    if request.distribution.part is not None:
        _print_part_summary(console, result, request.distribution.part, progress)
        return
    if scenes_out is not None:
        write_scenes(scenes_out, result.summary, result.cut_times, request.options.scene_threshold,
                     request.options.scenes_file, request.options.overwrite)
    _print_summary(console, result, progress)


# The options that go into the pipeline's UpscaleOptions, and into its EncodeSettings, as named there.
_PIPELINE = ("mode", "window", "stride", "tile", "tile_overlap", "memory_budget", "overwrite", "deinterlace",
             "outscale", "compare", "video_filter", "scene_threshold", "scenes_file", "chunk_frames", "start", "end",
             "work_dir", "restart")
_ENCODING = ("codec", "pix_fmt", "crf", "preset")


def _request(paths: tuple[str, ...], quiet: bool, given: dict) -> "UpscaleRequest":
    """The command's options as the API's request (each checked where it is defined)."""
    from stdan_cli.api import Distribution, UpscaleRequest
    from stdan_cli.api.upscale import EncodeSettings, UpscaleOptions, parse_encoder_options

    g = given
    model = model_choice(g["model_name"], g["weights"], g["device"], g["precision"], g["threads"], g["offline"],
                         g["backend"], quiet)
    encoding = EncodeSettings(**{k: g[k] for k in _ENCODING}, options=parse_encoder_options(g["encoder_opts"]),
                              quiet=quiet)
    options = UpscaleOptions(encoding=encoding, **{k: g[k] for k in _PIPELINE})
    distribution = Distribution.of(g["ray_address"], g["ray_workers"], g["shared_input"], g["part"])
    return UpscaleRequest(tuple(paths[:-1]), paths[-1], model, options, distribution, g["ext"], quiet)


def _print_part_summary(console: Console, result: "UpscaleResult", part, progress: RunProgress) -> None:
    s = result.summary
    for line in s.warnings:
        console.print(f"[yellow]warning:[/] {line}", soft_wrap=True)
    console.print(f"part {part}: {s.made} chunk(s) made, {s.resumed} done before, of its {result.part_chunks} "
                  f"({s.chunks} in the job) in {progress.elapsed():.1f} s; work folder {result.work_dir}. When "
                  "every part is done, run the same command without --part to assemble the output.", soft_wrap=True)


def _print_summary(console: Console, result: "UpscaleResult", progress: RunProgress) -> None:
    summary, options = result.summary, result.plan.options
    _print_notes(console, summary)
    (w0, h0), (w1, h1) = summary.size_in, summary.size_out
    scale = options.outscale
    size = f"{w1}x{h1} (scale {scale:g})"
    if options.compare:
        size = f"{w1}x{h1} (side by side: bicubic | {result.model}, each {w1 // 2}x{h1} at scale {scale:g})"
    console.print(
        f"wrote {summary.output}: {summary.frames_out} frames {size} at {fps_text(summary.rate_out)} fps "
        f"from {summary.frames_in} frames {w0}x{h0} in {progress.elapsed():.1f} s "
        f"({_work_note(summary, progress)}, {result.what_ran}"
        f"{f', {summary.tiles} tiles' if summary.tiles > 1 else ''}; {_scene_note(summary, result.cut_times)}, "
        f"{_count(summary.chunks, 'chunk')}{f', {summary.resumed} resumed' if summary.resumed else ''}"
        f"{_ray_note(summary)})",
        soft_wrap=True,
    )


def fps_text(rate) -> str:
    """A frame rate as people write it: 25, 59.94, 47.952."""
    return f"{float(rate):.3f}".rstrip("0").rstrip(".")


def _work_note(summary, progress: RunProgress) -> str:
    """The model's rate in this run, or what an assembly of chunks made elsewhere did."""
    made, seconds = progress.made(), progress.work_seconds()
    if made == 0:
        return f"assembled {_count(summary.chunks, 'chunk')} made by earlier runs or other tasks"
    return f"{speed_text(made / max(seconds or 0, 1e-9))} upscaling{f' {made} new frames' if summary.resumed else ''}"


def _scene_note(summary, times: list[float]) -> str:
    """'3 scenes, cuts at 0:01.200 and 0:03.040' (``times``: the cuts' times in seconds)."""
    text = _count(summary.scenes, "scene")
    if times:
        shown = [format_time(t) for t in times[:8]] + (["..."] if len(times) > 8 else [])
        text += f", {'cut' if len(times) == 1 else 'cuts'} at {', '.join(shown)}"
    return text


def _print_notes(console: Console, summary, prefix: str = "") -> None:
    for line in summary.warnings:
        console.print(f"[yellow]warning:[/] {prefix}{line}", soft_wrap=True)
    for line in summary.notices:
        console.print(f"notice: {prefix}{line}", soft_wrap=True)


def _batch(request: "UpscaleRequest", console: Console) -> None:
    from stdan_cli.api import plan_upscale_batch, run_upscale_batch

    quiet = request.quiet
    items, notices = plan_upscale_batch(request)  # every file's problems before the model loads
    for line in notices:
        console.print(f"notice: {line}", soft_wrap=True)
    runnable = [item for item in items if item.skip is None]
    file_column = TextColumn("{task.fields[file]}")
    bar = progress_bar(console, "upscaling", "frames", file_column, disable=quiet)
    task = bar.add_task("upscale", total=None, file="")

    def on_file(index: int, item) -> None:
        number = runnable.index(item) + 1
        bar.reset(task, total=None, file=f"file {number}/{len(runnable)}: {Path(item.input).name}")

    def progress(done: int, total: int | None) -> None:
        bar.update(task, completed=done, total=total if total and total >= done else None)

    run = run_upscale_batch(request, items, on_file, progress,
                            notify=lambda line: console.print(line, soft_wrap=True), display=bar)
    results = run.results
    for result in results:
        if result.summary:
            _print_notes(console, result.summary, f"{Path(result.item.input).name}: ")
    table = Table(title=f"{len(results)} file(s)", title_justify="left")
    for column in ("input", "output", "status", "frames", "seconds", "note"):
        table.add_column(column, overflow="fold")
    for r in results:
        frames = f"{r.summary.frames_in} -> {r.summary.frames_out}" if r.summary else ""
        style = {"done": "green", "skipped": "yellow", "failed": "red"}[r.status]
        table.add_row(r.item.input, str(r.item.output), f"[{style}]{r.status}[/]", frames,
                      f"{r.seconds:.1f}" if r.summary else "", r.message)
    _print_table(console, table)
    if run.what_ran:
        console.print(f"upscaled by {run.what_ran}", soft_wrap=True)
    failed = [r for r in results if r.status == "failed"]
    if failed:
        if quiet:
            for r in failed:
                click.echo(f"error: {r.item.input}: {r.message}", err=True)
        raise click.exceptions.Exit(1)


def _print_table(console: Console, table: Table) -> None:
    """On a terminal, fitted to its width; elsewhere (a log, a pipe) at its natural width, so
    file names are never folded into pieces."""
    if console.is_terminal:
        console.print(table)
        return
    wide = Console(width=100_000, no_color=True, highlight=False, force_terminal=False, file=io.StringIO())
    wide.print(table)
    for line in wide.file.getvalue().splitlines():
        console.print(line.rstrip(), soft_wrap=True, highlight=False, markup=False)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _ray_note(summary) -> str:
    workers = getattr(summary, "workers", None)
    if workers is None:
        return ""
    retried = f", {summary.retried} redone after a worker died" if summary.retried else ""
    return f"; {_count(workers, 'Ray worker')}{retried}"
