"""What the CLI verbs share: the model and backend options, and the progress bar."""

from __future__ import annotations

from typing import Callable

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from stdan_cli.api.choices import BACKENDS, DEVICE_HELP, PRECISIONS, UPSCALERS, parse_device


class DeviceType(click.ParamType):
    """``--device``: checked by the one device parser (its OptionError is the command's one
    ``error:`` line, as a mistake found later would be); passed on as the device's canonical name."""

    name = "DEVICE"

    def convert(self, value, param, ctx):
        return str(parse_device(value))


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
        click.option("--device", type=DeviceType(), default="auto", show_default=True,
                     help=f"Where the model runs: {DEVICE_HELP}. Which backends run where: see --backend."),
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


def backend_option(fn: Callable) -> Callable:
    """--backend (passed as backend), its choices and help read from the backends' table."""
    help = ("Where the network runs: " + "; ".join(f"{b.name}: {b.help}" for b in BACKENDS.values()) + ". Engines "
            "are exported once and cached in the tool's cache folder (engines/ beside its weights/; "
            "$STDAN_ENGINE_CACHE overrides it); the onnx or openvino extra must be installed (pip "
            "install '.[onnx]' or '.[openvino]' in the stdan-cli folder).")
    return click.option("--backend", type=click.Choice(list(BACKENDS)), default="auto", show_default=True,
                        help=help)(fn)


def model_choice(model_name: str, weights: str | None, device: str, precision: str, threads: int | None,
                 offline: bool, backend: str, quiet: bool):
    """The options of :func:`model_options` and :func:`backend_option` as the API's value."""
    from stdan_cli.api import ModelChoice

    return ModelChoice(name=model_name, weights=weights, device=device, precision=precision, threads=threads,
                       backend=backend, offline=offline, quiet=quiet)
