"""The ``stdan`` command line: :func:`main` is the entry point."""

from stdan_cli.cli.main import main

__all__ = ["main"]
