"""Where the output goes: the checks before any work, and the container its name asks for.
(The output is written to a file of ours and renamed when complete: :mod:`stdan_cli.jobs.assemble`.)"""

from __future__ import annotations

import os
from pathlib import Path

from stdan_cli.safe_files import claim_output
from stdan_cli.video.encoders import Container, container_for
from stdan_cli.video.sources import is_local_file


def container_format(output: Path) -> Container:
    """The container (muxer, default codec) the output's extension names."""
    return container_for(output.name)


def check_output(output: Path, overwrite: bool, source: str | os.PathLike | None = None) -> None:
    """Refuse an output that is the input (also through a link, -y or not), a pipe, device or
    folder, exists without ``overwrite`` (a dangling link too), or cannot be written: the one
    rule of :func:`stdan_cli.safe_files.claim_output`."""
    reads = [source] if source is not None and is_local_file(source) else []
    claim_output(output, reads, overwrite)
