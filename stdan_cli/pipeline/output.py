"""Where the output goes: the checks before any work, and the container its name asks for.
(The output is written to a file of ours and renamed when complete: :mod:`stdan_cli.jobs.assemble`.)"""

from __future__ import annotations

import os
from pathlib import Path

from stdan_cli.errors import OutputError
from stdan_cli.video.encoders import Container, container_for
from stdan_cli.video.sources import same_file


def container_format(output: Path) -> Container:
    """The container (muxer, default codec) the output's extension names."""
    return container_for(output.name)


def check_output(output: Path, overwrite: bool, source: str | os.PathLike | None = None) -> None:
    """Refuse an output that is the input (also through a link, -y or not), exists without
    ``overwrite``, or cannot be written."""
    if source is not None and same_file(source, output):
        raise OutputError(f"output {output} is the input file; choose another name (the input is never overwritten)")
    if output.exists() and not overwrite:
        raise OutputError(f"output {output} already exists; pass -y/--overwrite to replace it")
    if output.is_dir():
        raise OutputError(f"output {output} is a directory")
    parent = output.parent if str(output.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"cannot write {output}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"cannot write {output}: folder {parent} is not writable")
