"""What the CLI verbs share: the model options and the progress bar."""

from __future__ import annotations

from typing import Callable

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from stdan_cli.errors import OptionError
from stdan_cli.upscalers import PRECISIONS, UPSCALERS


def model_options(fn: Callable) -> Callable:
    """--model/--weights/--device/--precision/--threads/--offline, shared by every verb that
    runs a model (passed as model_name, weights, device, precision, threads, offline)."""
    models = "; ".join(f"{entry.name}: {entry.help}" for entry in UPSCALERS.values())
    options = [
        click.option("--model", "model_name", type=click.Choice(list(UPSCALERS)), default="stdan", show_default=True,
                     help=f"{models}."),
        click.option("--weights", default=None, metavar="PATH|NAME",
                     help="Checkpoint file or registry name. Default: the official checkpoint "
                          "(`stdan download-weights`; downloaded on first use)."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps."),
        click.option("--precision", type=click.Choice(list(PRECISIONS)), default="auto", show_default=True,
                     help="; ".join(f"{p.name}: {p.help}" for p in PRECISIONS.values()) + "."),
        click.option("--threads", type=int, default=None, help="CPU threads. Default: PyTorch's choice (all cores)."),
        click.option("--offline", is_flag=True,
                     help="Never download. Default: off (a missing default checkpoint is downloaded and verified on "
                          "first use, as `stdan download-weights` does, unless HF_HUB_OFFLINE=1)."),
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


def weights_for(model_name: str, weights: str | None, device: str, precision: str, offline: bool,
                quiet: bool, backend: str = "torch") -> str | None:
    """What to pass as ``weights`` to :func:`stdan_cli.upscalers.build_upscaler`: for STDAN (the
    model with weights) without --weights, the default checkpoint, downloaded on first use
    (after --device and --precision are checked: a mistake there should not wait for a download)."""
    if model_name in UPSCALERS and not UPSCALERS[model_name].needs_weights:
        if weights is not None:
            raise OptionError(f"--weights is for a model with weights (stdan); --model {model_name} has none")
        return None
    if model_name not in UPSCALERS:
        return weights
    from stdan_cli.upscalers.device import resolve_device, resolve_precision
    from stdan_cli.upscalers.engines import get_backend, place
    from stdan_cli.weights.first_run import weights_for_run

    if get_backend(backend).engine:
        place(backend, device, precision)  # --backend with --device and --precision
    else:
        resolve_precision(precision, resolve_device(device))
    return str(weights_for_run(weights, offline=offline, quiet=quiet))
