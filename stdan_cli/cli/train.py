"""``stdan train`` and ``stdan finetune``: the command-line faces of
:func:`stdan_cli.training.train` and :func:`stdan_cli.training.finetune.finetune`."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from stdan_cli.api.choices import DATASETS, DEFAULT_THRESHOLD
from stdan_cli.cli.progress import clock

_WORKERS = min(4, os.cpu_count() or 1)


def shared_options(fn: Callable) -> Callable:
    """The options both commands share (names fixed: scripts rely on them). Recipe values left
    unset come from --config."""
    options = [
        click.option("--config", "config", default=None, metavar="official|small|FILE",
                     help="The recipe: official (the paper's: Adam 2e-4, cosine restarts 4 x 150k iterations, "
                          "batch 18, crop 32, Charbonnier summed over the batch, drop path 0.1, fp32), small (the "
                          "same on the tiny STDANConfig.small() network) or a TOML/YAML/JSON file of recipe keys "
                          "(`base`, `model`, any option below, and the official names lr_G, T_period, restarts, "
                          "eta_min...; see docs/training.md). Default: official (finetune: the starting "
                          "checkpoint's network)."),
        click.option("--out", type=click.Path(path_type=Path), required=True, metavar="DIR",
                     help="Folder of the run, new or empty (or a run's, to continue it): DIR/run.json (what the "
                          "run is), DIR/last.pth (newest checkpoint, loadable by --weights), DIR/iter_XXXXXX.pth, "
                          "DIR/best.pth, DIR/log.jsonl. Running the same command again continues the run it holds; "
                          "--iterations and the --*-every intervals may change then. Required."),
        click.option("--iterations", type=click.IntRange(min=1), default=None, metavar="N",
                     help="Iterations in all; the recipe's cosine periods are scaled to fit. "
                          "Default: the recipe's (official 600000; finetune 2000)."),
        click.option("--batch-size", type=click.IntRange(min=1), default=None, metavar="B",
                     help="Global batch, split over the processes of a torchrun launch. "
                          "Default: the recipe's (official 18; finetune 4)."),
        click.option("--crop", type=click.IntRange(min=1), default=None, metavar="N",
                     help="Input (low-resolution) crop size; targets are 4N. Default: the recipe's (32)."),
        click.option("--seed", type=int, default=None, metavar="S", help="Seed of the initialisation, batches and "
                     "augmentation. Default: the recipe's (0)."),
        click.option("--device", default="auto", show_default=True,
                     help="auto, cpu, cuda, cuda:N or mps. Under torchrun each process uses cuda:LOCAL_RANK."),
        click.option("--precision", type=click.Choice(["fp32", "auto", "bf16", "fp16"]), default="fp32",
                     show_default=True, help="fp32 as the official training; auto: bf16 autocast on GPUs that "
                     "have it, else fp16 (with loss scaling); fp32 on CPUs."),
        click.option("--threads", type=click.IntRange(min=1), default=None,
                     help="CPU threads of each training process. Default: PyTorch's choice (all cores; torchrun sets 1 "
                          "per process when it starts several)."),
        click.option("--workers", type=click.IntRange(min=0), default=_WORKERS, show_default=True,
                     help="Data-loading worker processes per training process (0: load in the main process)."),
        click.option("--save-every", type=click.IntRange(min=1), default=None, metavar="K",
                     help="Iterations between checkpoints: DIR/last.pth and a kept DIR/iter_XXXXXX.pth (and "
                          "last.pth at the end). Default: the recipe's (official 1000; finetune 500)."),
        click.option("--keep", type=click.IntRange(min=0), default=None, metavar="N",
                     help="Keep the newest N periodic checkpoints iter_XXXXXX.pth (0: none, only last.pth). "
                          "Default: all, as the official run."),
        click.option("--ema", type=click.FloatRange(min=0, max=1, min_open=True, max_open=True), default=None,
                     metavar="DECAY", help="Also keep an exponential moving average of the weights (e.g. 0.999), "
                     "saved as DIR/ema.pth and validated alongside (ema_val_* in the log). Default: off."),
        click.option("--degradation", type=click.Choice(["bi", "bd"]), default=None,
                     help="How input frames are made from the targets, as `stdan eval`: bi (MATLAB bicubic) or "
                          "bd (Gaussian blur, then every 4th pixel); validation uses the same. Default: the "
                          "recipe's (bi)."),
        click.option("--val-images", is_flag=True, help="Save the validation outputs of the first clip under "
                     "DIR/val_images/iter_XXXXXX/. Default: off."),
        click.option("--log-every", type=click.IntRange(min=1), default=None, metavar="K",
                     help="Iterations between lines of DIR/log.jsonl. Default: the recipe's (official 100; finetune 50)."),
        click.option("--val-every", type=click.IntRange(min=0), default=None, metavar="K",
                     help="Iterations between validations (and one at the end); 0: none. "
                          "Default: the recipe's (official 1000; finetune 500)."),
        click.option("-q", "--quiet", is_flag=True, help="No progress display; only the summary. Default: off."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _overrides(iterations, batch_size, crop, seed, save_every, log_every, val_every, degradation) -> dict:
    return dict(iterations=iterations, batch_size=batch_size, crop=crop, seed=seed, save_every=save_every,
                log_every=log_every, val_every=val_every, degradation=degradation)


def _scores(scores: dict) -> str:
    return f"PSNR-Y {scores['val_psnr_y']:.3f} dB, SSIM-Y {scores['val_ssim_y']:.4f}" if scores else "-"


@contextmanager
def _display(quiet: bool):
    """Progress for the main process: a rich bar on a terminal, else a plain line per log
    interval. Yields (on_step, on_phase) callbacks."""
    from stdan_cli.api.train import is_main_process

    console = Console(stderr=True)
    if quiet or not is_main_process():
        yield None, None
        return
    if console.is_terminal:
        bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("iterations  loss {task.fields[loss]}  lr {task.fields[lr]}"),
                       TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=True)
        task = bar.add_task("starting", total=None, loss="-", lr="-")  # the model, the first batch
        first = True

        def on_step(step):
            nonlocal first
            if first:  # the rate and ETA count from here (a resumed run starts at its checkpoint)
                bar.reset(task, total=step.total, completed=step.start, description="training")
                first = False
            bar.update(task, completed=step.iteration, loss=f"{step.loss:.4f}", lr=f"{step.lr:.2e}")
            if step.scores:
                bar.console.print(f"iteration {step.iteration}: validation {_scores(step.scores)}")

        def on_phase(text):
            bar.console.print(text)

        with bar:
            yield on_step, on_phase
        return
    began, first = time.monotonic(), None

    def plain_step(step):
        nonlocal first
        first = step.iteration - 1 if first is None else first
        done = step.iteration - first
        if not step.logged:
            return
        eta = (time.monotonic() - began) / done * (step.total - step.iteration)
        line = (f"iteration {step.iteration}/{step.total}  loss {step.loss:.4f}  lr {step.lr:.2e}  "
                f"ETA {clock(eta)}")
        if step.scores:
            line += f"  validation {_scores(step.scores)}"
        click.echo(line, err=True)

    yield plain_step, (lambda text: click.echo(text, err=True))


@click.command("train")
@click.option("--data-root", type=click.Path(path_type=Path), required=True, metavar="VIMEO",
              help="The Vimeo-90K septuplet folder: VIMEO/sequences/<id>/im1..im7.png and VIMEO/sep_trainlist.txt "
                   "(the ids trained on). Required.")
@shared_options
@click.option("--val-dataset", type=click.Choice(DATASETS), default="vimeo-fast", show_default=True,
              help="Clips validated on, with the `stdan eval` protocol (PSNR/SSIM on RGB and Y).")
@click.option("--val-root", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Where the validation clips are (layouts as `stdan eval`). Default: --data-root (the septuplet "
                   "zip holds the test clips too).")
@click.option("--val-limit", type=click.IntRange(min=1), default=8, show_default=True, metavar="N",
              help="Validate on the first N clips of the dataset's list (or of --val-list) that are present; with "
                   "none present training goes on without validation (a notice says so).")
@click.option("--val-list", type=click.Path(path_type=Path), default=None, metavar="FILE",
              help="Validate on the clips this file names (one id per line, as `stdan eval --list`); every one "
                   "must be present. Default: the dataset's own list.")
def train_command(data_root, config, out, iterations, batch_size, crop, seed, device, precision, threads, workers,
                  save_every, keep, ema, degradation, val_images, log_every, val_every, quiet, val_dataset, val_root,
                  val_limit, val_list):
    """Train STDAN with the paper's recipe on Vimeo-90K.

    \b
    The odd frames of each septuplet, downscaled 4x with the MATLAB-style bicubic of
    `stdan eval`, are the input; all seven frames are the targets. Random crops, flips,
    rotations and time reversal; Adam, cosine annealing with restarts, Charbonnier loss.
    Checkpoints hold the model, optimizer, schedule, iteration and RNG states: run the same
    command again to continue a stopped run exactly (Ctrl-C saves first).

    \b
    Several GPUs or machines (the global batch is split over the processes):
      torchrun --nproc_per_node 4 -m stdan_cli train --data-root VIMEO --out runs/a
    """
    from stdan_cli.api import run_train

    with _display(quiet) as (on_step, on_phase):
        result = run_train(data_root, out, config=config,
                           overrides=_overrides(iterations, batch_size, crop, seed, save_every, log_every, val_every,
                                                degradation),
                           device=device, precision=precision, threads=threads, workers=workers,
                           val_dataset=val_dataset, val_root=val_root, val_limit=val_limit, val_list=val_list,
                           keep=keep, ema=ema, val_images=val_images, on_step=on_step,
                           notify=lambda line: click.echo(f"notice: {line}", err=True))
    _summary(result)


def _summary(result) -> None:
    from stdan_cli.api.train import is_main_process

    if not is_main_process():
        return
    if result.changes:
        click.echo("continued with " + ", ".join(f"{k} {a} -> {b}" for k, (a, b) in result.changes.items()))
    done = "already complete" if result.resumed_from >= result.iterations else (
        f"iterations {result.resumed_from + 1}-{result.iterations}" if result.resumed_from else
        f"{result.iterations} iterations")
    click.echo(f"{done}; checkpoint {result.checkpoint} (loads with --weights), log {result.out / 'log.jsonl'}")
    if result.scores:
        click.echo(f"validation at iteration {result.iterations}: {_scores(result.scores)}")


@click.command("finetune")
@click.argument("videos", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="VIDEO...")
@click.option("--from", "start", default="stdan-vimeo", show_default=True, metavar="NAME|PATH",
              help="Starting weights: a registry name (`stdan download-weights --list`) or a checkpoint file "
                   "(a last.pth of stdan train/finetune too).")
@shared_options
@click.option("--holdout", type=click.IntRange(min=1), default=2, show_default=True, metavar="N",
              help="Septuplets held out (spread over the footage) to score before and after.")
@click.option("--scene-threshold", type=click.FloatRange(min=0), default=DEFAULT_THRESHOLD, show_default=True,
              help="Scene-cut detection threshold, as `stdan upscale` (0: off); no sample spans a cut.")
def finetune_command(videos, start, config, out, iterations, batch_size, crop, seed, device, precision, threads,
                     workers, save_every, keep, ema, degradation, val_images, log_every, val_every, quiet, holdout,
                     scene_threshold):
    """Fine-tune STDAN on your own footage.

    \b
    The clips become training samples the way Vimeo-90K was made: runs of 7 consecutive
    frames within one scene (scene cuts are never inside one), the odd ones downscaled 4x
    as the input. A few are held out and scored (PSNR/SSIM on Y, the `stdan eval`
    protocol) with the starting weights and with the fine-tuned ones. DIR/last.pth is the
    result: `stdan upscale --weights DIR/last.pth`. Run the same command again to continue.
    """
    from stdan_cli.api import run_finetune
    from stdan_cli.api.train import is_main_process, starting_weights

    weights = starting_weights(start, quiet)  # a first-run download shows its own bar, before the display
    with _display(quiet) as (on_step, on_phase):
        result = run_finetune(videos, weights, out, config=config, device=device, precision=precision, threads=threads,
                              workers=workers, holdout=holdout, scene_threshold=scene_threshold, keep=keep, ema=ema,
                              val_images=val_images, on_phase=on_phase, on_step=on_step,
                              overrides=_overrides(iterations, batch_size, crop, seed, save_every, log_every, val_every,
                                                   degradation))
    _summary(result.run)
    if is_main_process():
        f = result.footage
        click.echo(f"{len(f.train)} training and {len(f.held)} held-out septuplet(s) from {len(f.videos)} clip(s), "
                   f"{f.cuts} scene cut(s) avoided")
        click.echo(f"held-out before: {_scores(result.before)}")
        click.echo(f"held-out after:  {_scores(result.after)}")
