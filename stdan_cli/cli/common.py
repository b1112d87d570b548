"""What the CLI verbs share: the model options and the progress bar."""

from __future__ import annotations

from typing import Callable

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from stdan_cli.upscalers import PRECISIONS, UPSCALERS


def model_options(fn: Callable) -> Callable:
    """--model/--weights/--device/--precision/--threads, shared by every verb that runs a model
    (passed as model_name, weights, device, precision, threads)."""
    models = "; ".join(f"{entry.name}: {entry.help}" for entry in UPSCALERS.values())
    options = [
        click.option("--model", "model_name", type=click.Choice(list(UPSCALERS)), default="stdan", show_default=True,
                     help=f"{models}."),
        click.option("--weights", default=None, metavar="PATH|NAME",
                     help="Checkpoint file or registry name. Default: the official checkpoint from "
                          "`stdan download-weights`."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps."),
        click.option("--precision", type=click.Choice(list(PRECISIONS)), default="auto", show_default=True,
                     help="; ".join(f"{p.name}: {p.help}" for p in PRECISIONS.values()) + "."),
        click.option("--threads", type=int, default=None, help="CPU threads. Default: PyTorch's choice (all cores)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def progress_bar(console: Console, verb: str, unit: str, *extra: TextColumn, disable: bool = False) -> Progress:
    """A rich progress bar: '<verb> [bar] done/total <unit> <extra> elapsed ETA remaining'."""
    return Progress(
        TextColumn(f"[bold]{verb}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit), *extra,
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=console, disable=disable, transient=True,
    )
