"""``stdan eval``: the options parsed into an :class:`~stdan_cli.api.EvalRequest`, given to
:func:`~stdan_cli.api.run_eval`, and the scores printed."""

from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import TextColumn
from rich.table import Table

from stdan_cli.api.choices import DATASET_SPECS, DATASETS, VID4_CLIPS
from stdan_cli.cli.cluster import ray_option
from stdan_cli.cli.common import backend_option, model_choice, model_options, progress_bar

if TYPE_CHECKING:  # the command imports these when it runs (PyTorch): --help stays light
    from stdan_cli.api.eval import DatasetResult, EvalRun, WeightsIdentity

_LR_TEXT = {"precomputed": "precomputed LR frames", "bi": "LR made with MATLAB bicubic x1/4",
            "bd": "LR made with 7x7 Gaussian blur + nearest x1/4"}


def _fmt(v: float | None, digits: int) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def _clips_text(result: DatasetResult) -> str:
    """'3 of 1225' for a partial run; with clips left out of the means, how many."""
    text = result.selection.count() if result.selection is not None else str(len(result.clips))
    return text + (f", {len(result.excluded)} out" if result.excluded else "")


def _summary_table(result: DatasetResult) -> Table:
    lr = ", ".join(f"{_LR_TEXT[s]}" + (f" ({n} clips)" if len(result.lr_sources) > 1 else "")
                   for s, n in result.lr_sources.items())
    partial = " [bold]partial run[/]" if result.selection is not None and result.selection.partial else ""
    table = Table(title=f"{result.dataset}: {result.model} ({result.precision}, {result.device}); {lr}{partial}",
                  box=box.SIMPLE_HEAD)
    table.add_column("", justify="left")  # the label wraps on a narrow terminal; numbers never do
    for col in ("PSNR", "SSIM", "PSNR-Y", "SSIM-Y", "clips", "s/clip"):
        table.add_column(col, justify="right", no_wrap=True, min_width=len(col))
    for label, frames, extra in (("measured", "all", [_clips_text(result), _fmt(result.seconds_per_clip, 2)]),
                                 ("  input frames", "input", ["", ""]),
                                 ("  interpolated", "interpolated", ["", ""])):
        table.add_row(label, *[_fmt(result.mean(m, frames), 4) for m in ("psnr", "ssim", "psnr_y", "ssim_y")], *extra)
    mark = "" if result.comparable else " *"  # explained below the table
    for ref in result.references:
        table.add_row(f"[dim]{ref.method}[/]{mark}", _fmt(ref.psnr, 4), _fmt(ref.ssim, 4), _fmt(ref.psnr_y, 4),
                      _fmt(ref.ssim_y, 4), "", "")
    return table


def _not_comparable_line(result: DatasetResult) -> str | None:
    """Why the published rows are not comparable with this run (None when they are, or there are none)."""
    if not result.references or result.comparable:
        return None
    sel = result.selection
    if sel is not None and sel.partial:
        how = f" ({sel.how()})" if sel.how() else ""
        return (f"* Partial run: {sel.count()} clips{how}. The published figures are for all {sel.total} clips "
                f"and are not comparable with these.")
    return ("* The published figures are for Vid4's four clips (calendar, city, foliage, walk); this run scored "
            f"{', '.join(c.name for c in result.clips)}, so they are not comparable.")


def _weights_lines(identity: WeightsIdentity | None) -> list[str]:
    if identity is None:
        return []
    lines = [f"weights: {escape(identity.label())}, sha256 {identity.sha256}"]
    warning = identity.warning()
    if warning:
        lines.append(f"[bold yellow]warning:[/] {escape(warning)}")
    return lines


def _vid4_table(result: DatasetResult) -> Table:
    show_ref = bool(result.references)
    table = Table(title="Vid4 per clip" + (" (ref.: STDAN, released checkpoint, authors' run)" if show_ref else ""),
                  box=box.SIMPLE_HEAD)
    cols = ["clip", "frames", "PSNR", "SSIM", "PSNR-Y", "SSIM-Y"] + (["ref.\nPSNR-Y", "ref.\nSSIM-Y"] if show_ref else [])
    for col in cols:
        table.add_column(col, justify="left" if col == "clip" else "right", no_wrap=True)
    for c in result.clips:
        row = [c.name, str(len(c.frames))] + [_fmt(c.mean(m), 4) for m in ("psnr", "ssim", "psnr_y", "ssim_y")]
        if show_ref:
            ref = VID4_CLIPS.get(c.name)
            row += [_fmt(ref[0], 4), _fmt(ref[1], 4)] if ref else ["-", "-"]
        table.add_row(*row)
    return table


@click.command("eval")
@click.option("--dataset", type=click.Choice(DATASETS), required=True,
              help="vimeo-fast, vimeo-medium, vimeo-slow (the official Vimeo-90K test lists, shipped "
                   "with stdan-cli) or vid4. Required.")
@click.option("--data-root", type=click.Path(path_type=Path), required=True, metavar="DIR",
              help="Dataset folder (layouts above). Required.")
@click.option("--degradation", type=click.Choice(["bi", "bd"]), default="bi", show_default=True,
              help="bi: precomputed LR frames when the root has them, else MATLAB bicubic x1/4 of the "
                   "ground truth. bd: 7x7 Gaussian blur (sigma 1.6, replicated borders), then MATLAB "
                   "'nearest' x1/4, always made from the ground truth.")
@model_options
@backend_option
@click.option("--limit", type=click.IntRange(min=1), default=None, metavar="N",
              help="Score only the first N clips (of the list, or of the sorted Vid4 folders); reported as "
                   "partial. Default: all.")
@click.option("--list", "list_file", type=click.Path(path_type=Path, dir_okay=False), default=None, metavar="FILE",
              help="Score only the clips FILE names, one a line, as the official lists are (00001/0625 for "
                   "Vimeo; a folder name of hr/ for Vid4); with --limit, the first N of them. Default: the "
                   "dataset's clips.")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False), default=None, metavar="PATH",
              help="Write every per-clip and per-frame score to this JSON file (never a file the run reads; "
                   "an existing file only with -y). Default: none.")
@click.option("--save-images", type=click.Path(path_type=Path, file_okay=False), default=None, metavar="DIR",
              help="Write the scored output frames as PNG under DIR/<clip>/. DIR must be outside the dataset and "
                   "new, empty, or a folder an earlier --save-images filled (it carries a marker file; its frames "
                   "are replaced only with -y). Default: none.")
@click.option("-y", "--overwrite", is_flag=True,
              help="Replace an existing --json file, and the frames in a --save-images folder an earlier run "
                   "filled. Default: refuse. Files the run reads are never replaced.")
@ray_option
@click.option("--log-interval", type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True,
              metavar="SECONDS",
              help="When stderr is not a terminal (a log file, nohup, Slurm), print a plain progress line "
                   "(clips and frames done, rate, ETA) every SECONDS instead of the progress bar.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or lines; only the results. Default: off.")
def eval_command(dataset, data_root, degradation, model_name, weights, device, precision, threads, offline, backend, limit,
                 list_file, json_path, save_images, overwrite, ray_address, ray_workers, log_interval, quiet):
    """Score a model with the paper's protocol: PSNR/SSIM on RGB and on Y.

    \b
    Layouts of --data-root:
      Vimeo-90K  DIR/sequences/<id>/im1..im7.png   (the released septuplet zip)
             or  DIR/sequences/test/<id>/im1..im7.png
                 optional DIR/LR_test/<id>/ with im1..im7.png or just im1,im3,im5,im7.png
      Vid4       DIR/hr/<clip>/*.png, optional DIR/lr_x4/<clip>/*.png (one per hr frame),
                 as in the Vid4 archive the official STDAN README links
    <id> is like 00001/0625. A listed clip missing from DIR is an error unless --limit
    stops before it. Frames whose size is not a multiple of 4, grayscale frames and
    frames with alpha are accepted (LR size ceil(size/4), output cropped to the ground
    truth; grey used as R, G, B; alpha dropped), and the report says so.

    \b
    Protocol (the official test scripts):
      Vimeo  LR frames 1, 3, 5, 7 in; the 7 outputs scored against frames 1..7.
      Vid4   every other frame in, 4-frame windows (7 outputs) advancing by 3 inputs, the
             last window aligned to the clip's end; every frame scored once.
    Outputs are padded to multiples of 8, clamped and rounded to uint8, then scored:
    PSNR and SSIM (11x11 Gaussian, sigma 1.5) on RGB and on Y (MATLAB luma), per frame,
    averaged per clip, then over clips; also over the input-time frames and over the
    interpolated ones. Clips reproduced exactly (infinite PSNR, e.g. the all-black clips
    of the Vimeo lists) are left out of the means and counted.

    \b
    The report and --json record the weights (registry name or path, sha256; a warning
    when the registry does not vouch for them), versions, device, precision, date, the
    command and which clips were scored out of how many.
    """
    from stdan_cli.api import Distribution, EvalRequest, prepare_eval, run_eval

    request = EvalRequest(dataset, data_root, degradation,
                          model_choice(model_name, weights, device, precision, threads, offline, backend, quiet),
                          limit, list_file, json_path, save_images, Distribution.of(ray_address, ray_workers),
                          overwrite)
    run = prepare_eval(request)  # the data's problems before a model loads; the default weights downloaded
    identity = run.identity
    err = Console(stderr=True, quiet=quiet)
    if identity is not None and identity.warning():
        err.print(f"[bold yellow]warning:[/] {escape(identity.warning())}", soft_wrap=True)
    display = _Display(run, err, quiet, log_interval)
    result = run_eval(run, progress=display.clip_done, frame_progress=display.frames_done,
                      notify=lambda line: err.print(line, soft_wrap=True), display=display.shown)
    _print_result(result, identity, json_path, save_images)


class _Display:
    """The run's progress on stderr: a bar on a terminal (or nothing with -q), else plain lines
    at a steady interval (a log file, nohup, Slurm)."""

    def __init__(self, run: "EvalRun", err: Console, quiet: bool, log_interval: float):
        self.run, self.err, self.quiet, self.log_interval = run, err, quiet, log_interval
        self.plain = not (quiet or err.is_terminal)
        self._bar = self._task = self._log = None

    def clip_done(self, done: int, total: int, clip) -> None:
        if self._log is not None:
            self._log.clip_done(done, total, clip)
        elif self._bar is not None:
            self._bar.update(self._task, completed=done, total=total,
                             last=f"{clip.name}: {_fmt(clip.mean('psnr_y'), 2)} dB Y")

    @property
    def frames_done(self):
        """Per-frame progress, for the plain lines only."""
        return self._frames if self.plain else None

    def _frames(self, n: int) -> None:
        if self._log is not None:
            self._log.frames_done(n)

    @contextmanager
    def shown(self):
        clips = self.run.clips
        if not self.plain:
            last = TextColumn("{task.fields[last]}")
            with progress_bar(self.err, "scoring", "clips", last, disable=self.quiet) as self._bar:
                self._task = self._bar.add_task("eval", total=len(clips), last="")
                yield
            return
        from stdan_cli.api.eval import ProgressLog

        with ProgressLog(f"eval {self.run.request.dataset}", len(clips), self.run.frames(), self.log_interval) as log:
            self._log = log
            yield


def _print_result(result: "DatasetResult", identity: "WeightsIdentity | None", json_path: Path | None,
                  save_images: Path | None) -> None:
    console = Console()
    for line in _weights_lines(identity):
        console.print(line, soft_wrap=True)
    console.print(_summary_table(result))
    if DATASET_SPECS[result.dataset].published_clips is not None:  # published figures per clip
        console.print(_vid4_table(result))
    if result.excluded:
        names = ", ".join(result.excluded[:5]) + (", ..." if len(result.excluded) > 5 else "")
        console.print(f"{len(result.excluded)} clip(s) left out of the means: output identical to the ground "
                      f"truth (infinite PSNR): {names}", soft_wrap=True)
    for notice in result.notices:
        console.print(f"notice: {escape(notice)}", soft_wrap=True)
    if not result.references:
        console.print("[dim]No published figures are shown: those known are for BI degradation.[/]")
    elif (why := _not_comparable_line(result)) is not None:
        console.print(f"[bold]{escape(why)}[/]", soft_wrap=True)
    for ref in result.references:
        console.print(f"[dim]{ref.source}[/]", soft_wrap=True)
    if json_path:
        console.print(f"per-clip and per-frame scores written to {json_path}")
    if save_images:
        console.print(f"output frames written under {save_images}")
