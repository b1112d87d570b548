"""Pieces shared by the CLI verbs: error reporting and common options."""

from __future__ import annotations

import functools
import sys
from typing import Callable

import click

from stdan_cli.errors import StdanError
from stdan_cli.runtime import MODELS, PRECISIONS


def report_errors(fn: Callable) -> Callable:
    """Turn user-facing failures into one line on stderr and a non-zero exit (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except StdanError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("error: interrupted; nothing was written", err=True)
            sys.exit(130)
        except MemoryError:
            click.echo("error: out of memory; try a smaller --tile or --precision bf16", err=True)
            sys.exit(1)

    return wrapper


def model_options(fn: Callable) -> Callable:
    """--model/--weights/--device/--precision/--threads, shared by every verb that runs a model
    (passed as model_name, weights, device, precision, threads)."""
    options = [
        click.option("--model", "model_name", type=click.Choice(MODELS), default="stdan", show_default=True,
                     help="stdan, or bicubic: bicubic x4 and averaged in-between frames (a baseline; no weights)."),
        click.option("--weights", default=None, metavar="PATH|NAME",
                     help="Checkpoint file or registry name. Default: the official checkpoint from "
                          "`stdan download-weights`."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps."),
        click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True,
                     help="fp32; bf16 (CPUs with bfloat16 and GPUs; about 0.7% relative difference); "
                          "fp16 (GPU only)."),
        click.option("--threads", type=int, default=None, help="CPU threads. Default: PyTorch's choice (all cores)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn
