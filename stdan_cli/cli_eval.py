"""``stdan eval``: the command-line face of :func:`stdan_cli.evaluation.evaluate`."""

from __future__ import annotations

import math
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from stdan_cli.cli_common import model_options, report_errors
from stdan_cli.evaluation import DATASETS, evaluate, find_clips, write_json
from stdan_cli.evaluation.references import REFERENCES, VID4_CLIPS
from stdan_cli.runtime import build_upscaler


def _fmt(v: float | None, digits: int) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


@click.command("eval")
@click.option("--dataset", type=click.Choice(DATASETS), required=True,
              help="vimeo-fast/-medium/-slow (the official Vimeo-90K test lists) or vid4. Required.")
@click.option("--data-root", type=click.Path(path_type=Path), required=True,
              help="Dataset folder. Vimeo: DIR/sequences/<id>/im1..im7.png or DIR/sequences/test/<id>/, "
                   "optional DIR/LR_test/<id>/. Vid4: DIR/hr/<clip>/, optional DIR/lr_x4/<clip>/. Required.")
@click.option("--degradation", type=click.Choice(["bi", "bd"]), default="bi", show_default=True,
              help="How LR frames are made when none are precomputed: bi = MATLAB bicubic x1/4; "
                   "bd = 7x7 Gaussian blur (sigma 1.6) then nearest x1/4.")
@model_options
@click.option("--limit", type=int, default=None, help="Score only the first N clips. Default: all.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None,
              help="Write every per-clip and per-frame score to this JSON file. Default: none.")
@click.option("--save-images", type=click.Path(path_type=Path), default=None,
              help="Write the output frames as PNG under this folder (one subfolder per clip). Default: none.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar; only the result table. Default: off.")
@report_errors
def eval_command(dataset, data_root, degradation, model_name, weights, device, precision, threads, limit,
                 json_path, save_images, quiet):
    """Score a model with the paper's protocol: PSNR/SSIM on RGB and on Y.

    Vimeo: LR frames 1, 3, 5, 7 in, all 7 outputs scored. Vid4: every other frame in, every
    frame scored (windows of 7 frames, the last aligned to the clip's end). LR frames are the
    precomputed ones when present, else made from the ground truth (--degradation). Outputs are
    clamped and rounded to uint8 before scoring; a clip's score is the mean of its frames, a
    dataset's the mean of its clips (clips with infinite PSNR are left out and counted).
    """
    if limit is not None and limit < 1:
        raise click.BadParameter("must be at least 1", param_hint="--limit")
    console = Console(quiet=False)
    find_clips(dataset, data_root, limit)  # the data's problems before loading a model
    upscaler = build_upscaler(model_name, weights, device, precision, threads)
    columns = (TextColumn("[bold]scoring"), BarColumn(), MofNCompleteColumn(), TextColumn("clips"),
               TextColumn("{task.fields[last]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), disable=quiet, transient=True) as bar:
        task = bar.add_task("eval", total=None, last="")

        def progress(done, total, clip):
            bar.update(task, completed=done, total=total, last=f"{clip.name}: {clip.mean('psnr_y'):.2f} dB")

        result = evaluate(dataset, data_root, upscaler, degradation, limit, save_images, progress)
    if json_path:
        write_json(result, json_path)

    table = Table(title=f"{dataset} ({degradation.upper()}), {upscaler.name}, {upscaler.precision}")
    for col in ("", "PSNR", "SSIM", "PSNR-Y", "SSIM-Y", "clips", "s/clip"):
        table.add_column(col, justify="right" if col else "left")
    table.add_row("measured", _fmt(result.mean("psnr"), 4), _fmt(result.mean("ssim"), 4), _fmt(result.mean("psnr_y"), 4),
                  _fmt(result.mean("ssim_y"), 4), str(len(result.scored)), _fmt(result.seconds_per_clip, 2))
    for ref in REFERENCES.get(dataset, []):
        table.add_row(f"[dim]{ref.method} (published)[/]", _fmt(ref.psnr, 4), _fmt(ref.ssim, 4), _fmt(ref.psnr_y, 4),
                      _fmt(ref.ssim_y, 4), "", "")
    console.print(table)
    if dataset == "vid4":
        clips = Table(title="Vid4 per clip (Y)")
        for col in ("clip", "PSNR-Y", "SSIM-Y", "STDAN released PSNR-Y", "SSIM-Y"):
            clips.add_column(col)
        for c in result.clips:
            ref = VID4_CLIPS.get(c.name)
            clips.add_row(c.name, _fmt(c.mean("psnr_y"), 2), _fmt(c.mean("ssim_y"), 4),
                          _fmt(ref[0], 2) if ref else "-", _fmt(ref[1], 4) if ref else "-")
        console.print(clips)
    if result.excluded:
        console.print(f"{result.excluded} clip(s) with infinite PSNR (reproduced exactly, e.g. all-black) left out of the means")
    for ref in REFERENCES.get(dataset, []):
        console.print(f"[dim]{ref.method}: {ref.source}[/]", soft_wrap=True)
    if json_path:
        console.print(f"per-clip and per-frame scores written to {json_path}")
