"""What INPUT names: a file, an image-sequence pattern (``img%03d.png``) or a URL, opened
as FFmpeg opens it, and shown to the user as written."""

from __future__ import annotations

import os
import re
from pathlib import Path

import av

from stdan_cli.errors import InputError

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_PATTERN = re.compile(r"%0?\d*d")


def is_url(source: str | os.PathLike) -> bool:
    return isinstance(source, str) and bool(_URL.match(source))


def is_pattern(source: str | os.PathLike) -> bool:
    """An image-sequence pattern (``img%03d.png``) with a first file where FFmpeg looks for
    one (numbers 0 to 4), and no file of that literal name."""
    text = os.fspath(source)
    if not _PATTERN.search(text) or Path(text).exists():
        return False
    return any(Path(_PATTERN.sub(lambda m: m.group(0) % n, text)).exists() for n in range(5))


def is_local_file(source: str | os.PathLike) -> bool:
    return not is_url(source) and not is_pattern(source)


def display(source: str | os.PathLike) -> str:
    return os.fspath(source)


def check_input(source: str | os.PathLike) -> None:
    """Refuse a local ``source`` that is missing, a folder, a pipe or unreadable (without opening it)."""
    name = display(source)
    if is_local_file(source):
        path = Path(source)
        if not path.exists():
            raise InputError(f"input {name} does not exist")
        if path.is_dir():
            raise InputError(f"input {name} is a directory, not a video")
        if not path.is_file():  # read more than once (probe, decode, stream copy): a pipe would hang
            raise InputError(f"input {name} is not a regular file (a pipe or a device); save it to a file first")
        if not os.access(path, os.R_OK):
            raise InputError(f"input {name} is not readable")


def open_input(source: str | os.PathLike) -> av.container.InputContainer:
    """Open ``source`` for reading, with one-line errors for the usual mistakes."""
    name = display(source)
    check_input(source)
    options = {"rw_timeout": "30000000"} if is_url(source) else {}  # 30 s without data ends a network read
    try:
        if is_pattern(source):
            return av.open(name, mode="r", format="image2")
        return av.open(name, mode="r", options=options)
    except av.error.FFmpegError as exc:
        what = "a media file FFmpeg can read" if not is_url(source) else "reachable media"
        raise InputError(f"input {name} is not {what} ({exc.strerror or exc})") from None

