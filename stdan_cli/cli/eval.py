"""``stdan eval``: the command-line face of :func:`stdan_cli.evaluation.evaluate`."""

from __future__ import annotations

import math
from contextlib import ExitStack
from functools import partial
from pathlib import Path

import click
from rich import box
from rich.console import Console
from rich.progress import TextColumn
from rich.table import Table

from stdan_cli.cli.cluster import Placement, ray_option, weights_file
from stdan_cli.cli.common import model_options, progress_bar, weights_for
from stdan_cli.cli.export import backend_option, prepare_backend
from stdan_cli.errors import OutputError
from stdan_cli.evaluation import DATASETS, DatasetResult, evaluate, find_clips, write_json
from stdan_cli.evaluation.references import VID4_CLIPS
from stdan_cli.upscalers import build_upscaler

_LR_TEXT = {"precomputed": "precomputed LR frames", "bi": "LR made with MATLAB bicubic x1/4",
            "bd": "LR made with 7x7 Gaussian blur + nearest x1/4"}


def _fmt(v: float | None, digits: int) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def _check_outputs(json_path: Path | None, save_images: Path | None) -> None:
    """Fail before the (long) run, not after it, when a result cannot be written."""
    if json_path is not None and (json_path.is_dir() or not json_path.parent.is_dir()):
        raise OutputError(f"--json {json_path}: " + ("is a folder" if json_path.is_dir() else
                                                     f"folder {json_path.parent} does not exist"))
    if save_images is not None and save_images.exists() and not save_images.is_dir():
        raise OutputError(f"--save-images {save_images} exists and is not a folder")


def _summary_table(result: DatasetResult) -> Table:
    lr = ", ".join(f"{_LR_TEXT[s]}" + (f" ({n} clips)" if len(result.lr_sources) > 1 else "")
                   for s, n in result.lr_sources.items())
    table = Table(title=f"{result.dataset}: {result.model} ({result.precision}, {result.device}); {lr}",
                  box=box.SIMPLE_HEAD)
    table.add_column("", justify="left")  # the label wraps on a narrow terminal; numbers never do
    for col in ("PSNR", "SSIM", "PSNR-Y", "SSIM-Y", "clips", "s/clip"):
        table.add_column(col, justify="right", no_wrap=True, min_width=len(col))
    n, total = len(result.scored), len(result.clips)
    table.add_row("measured", _fmt(result.mean("psnr"), 4), _fmt(result.mean("ssim"), 4), _fmt(result.mean("psnr_y"), 4),
                  _fmt(result.mean("ssim_y"), 4), str(n) if n == total else f"{n} of {total}",
                  _fmt(result.seconds_per_clip, 2))
    for ref in result.references:
        table.add_row(f"[dim]{ref.method}[/]", _fmt(ref.psnr, 4), _fmt(ref.ssim, 4), _fmt(ref.psnr_y, 4),
                      _fmt(ref.ssim_y, 4), "", "")
    return table


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
              help="Score only the first N clips (of the list, or of the sorted Vid4 folders). Default: all.")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False), default=None, metavar="PATH",
              help="Write every per-clip and per-frame score to this JSON file. Default: none.")
@click.option("--save-images", type=click.Path(path_type=Path, file_okay=False), default=None, metavar="DIR",
              help="Write the scored output frames as PNG under DIR/<clip>/. Default: none.")
@ray_option
@click.option("-q", "--quiet", is_flag=True, help="No progress bar; only the results. Default: off.")
def eval_command(dataset, data_root, degradation, model_name, weights, device, precision, threads, offline, backend,
                 limit,
                 json_path, save_images, ray_address, ray_workers, quiet):
    """Score a model with the paper's protocol: PSNR/SSIM on RGB and on Y.

    \b
    Layouts of --data-root:
      Vimeo-90K  DIR/sequences/<id>/im1..im7.png   (the released septuplet zip)
             or  DIR/sequences/test/<id>/im1..im7.png
                 optional DIR/LR_test/<id>/ with im1..im7.png or just im1,im3,im5,im7.png
      Vid4       DIR/hr/<clip>/*.png, optional DIR/lr_x4/<clip>/*.png (one per hr frame),
                 as in the Vid4 archive the official STDAN README links
    <id> is like 00001/0625. A listed clip missing from DIR is an error unless --limit
    stops before it.

    \b
    Protocol (the official test scripts):
      Vimeo  LR frames 1, 3, 5, 7 in; the 7 outputs scored against frames 1..7.
      Vid4   every other frame in, 4-frame windows (7 outputs) advancing by 3 inputs, the
             last window aligned to the clip's end; every frame scored once.
    Outputs are padded to multiples of 8, clamped and rounded to uint8, then scored:
    PSNR and SSIM (11x11 Gaussian, sigma 1.5) on RGB and on Y (MATLAB luma), per frame,
    averaged per clip, then over clips. Clips reproduced exactly (infinite PSNR, e.g. the
    all-black clips of the Vimeo lists) are left out of the means and counted.
    """
    _check_outputs(json_path, save_images)
    clips = find_clips(dataset, data_root, limit)  # the data's problems before a model loads
    where = Placement.of(ray_address, ray_workers)
    weights = weights_for(model_name, weights, device, precision, offline, quiet, backend)  # downloads the default on first use
    with ExitStack() as stack:
        if where.ray is not None:  # joined (or started) before the progress bar shows
            from stdan_cli.cluster import WorkerSpec, evaluate_on_ray, node_cpus, plan_workers, ray_cluster

            path = weights_file(model_name, weights)
            ray = stack.enter_context(ray_cluster(where.ray))
            layout = plan_workers(ray.cluster_resources(), device, where.workers, threads, node_cpus(ray))
            spec = WorkerSpec(model_name, layout.device, precision, layout.threads, backend)
            run = partial(evaluate_on_ray, ray, dataset, data_root, spec, layout, path)
        else:
            upscaler = build_upscaler(model_name, weights, device, precision, threads, backend)
            prepare_backend(upscaler, 4, Console(stderr=True, quiet=quiet))  # the protocol's 4-frame windows
            run = partial(evaluate, dataset, data_root, upscaler)
        last = TextColumn("{task.fields[last]}")
        with progress_bar(Console(stderr=True), "scoring", "clips", last, disable=quiet) as bar:
            task = bar.add_task("eval", total=len(clips), last="")

            def progress(done, total, clip):
                bar.update(task, completed=done, total=total,
                           last=f"{clip.name}: {_fmt(clip.mean('psnr_y'), 2)} dB Y")

            result = run(degradation=degradation, limit=limit, save_images=save_images, progress=progress)
    if json_path:
        write_json(result, json_path)

    console = Console()
    console.print(_summary_table(result))
    if dataset == "vid4":
        console.print(_vid4_table(result))
    if result.excluded:
        names = ", ".join(result.excluded[:5]) + (", ..." if len(result.excluded) > 5 else "")
        console.print(f"{len(result.excluded)} clip(s) left out of the means: output identical to the ground "
                      f"truth (infinite PSNR): {names}", soft_wrap=True)
    if not result.references:
        console.print("[dim]No published figures are shown: those known are for BI degradation.[/]")
    for ref in result.references:
        console.print(f"[dim]{ref.source}[/]", soft_wrap=True)
    if json_path:
        console.print(f"per-clip and per-frame scores written to {json_path}")
    if save_images:
        console.print(f"output frames written under {save_images}")
