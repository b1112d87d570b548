"""Pieces shared by the CLI verbs: error reporting and common options."""

from __future__ import annotations

import functools
import sys
from typing import Callable

import click

from stdan_cli.errors import StdanError


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
