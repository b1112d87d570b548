"""Where the output goes: checks before any work, the container, and the temporary file
that is renamed only when complete (so no run leaves a half-written output behind)."""

from __future__ import annotations

import os
from pathlib import Path

from stdan_cli.errors import OutputError

# File extension -> FFmpeg muxer.
CONTAINERS = {"mp4": "mp4", "m4v": "mp4", "mov": "mov", "mkv": "matroska", "webm": "webm", "avi": "avi", "nut": "nut"}


def temp_path(output: Path) -> Path:
    """The hidden file beside ``output`` that is written and then renamed to it."""
    return output.with_name(f".{output.stem}.stdan-partial{output.suffix}")


def container_format(output: Path) -> str:
    ext = output.suffix.lower().lstrip(".")
    if ext not in CONTAINERS:
        raise OutputError(f"cannot tell the container from '{output.name}'; use .{', .'.join(CONTAINERS)}")
    return CONTAINERS[ext]


def check_output(output: Path, overwrite: bool) -> None:
    if output.exists() and not overwrite:
        raise OutputError(f"output {output} already exists; pass -y/--overwrite to replace it")
    if output.is_dir():
        raise OutputError(f"output {output} is a directory")
    parent = output.parent if str(output.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"cannot write {output}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"cannot write {output}: folder {parent} is not writable")
