"""``--scenes FILE``: scene starts a user lists, read with a size limit and checked line by line.

One scene start a line: a 0-based frame number or a time (``12.5``, ``1:02.250``), or
PySceneDetect's ``list-scenes`` CSV (its 1-based "Start Frame" column, found in a header
row). Blank lines and lines starting with # are ignored. The file must be a regular file of
at most :data:`LIMIT` bytes: a pipe, a device or ``/dev/zero`` is refused, not read forever.
"""

from __future__ import annotations

import csv
import errno
import io
import os
from dataclasses import dataclass
from pathlib import Path

from stdan_cli.errors import SceneFileError
from stdan_cli.pipeline.timecode import parse_time
from stdan_cli.safe_files import NotRegular, read_limited

DEFAULT_THRESHOLD = 27.0  # PySceneDetect's default for ContentDetector
LIMIT = 16 * 2**20  # bytes: a scene a second for days is far less


@dataclass(frozen=True)
class SceneList:
    """Scene starts read from a file: frame numbers (0-based) and times (seconds from the
    first frame; a scene starts at the first frame at or after its time)."""

    frames: frozenset[int] = frozenset()
    times: tuple[float, ...] = ()


def _read(path: Path) -> str:
    try:
        data = read_limited(Path(os.path.realpath(path)), LIMIT)  # a link the user names leads to the file
    except FileNotFoundError:
        raise SceneFileError(f"scenes file {path} does not exist") from None
    except NotRegular:
        raise SceneFileError(f"scenes file {path} is not a regular file (a pipe, device or folder)") from None
    except ValueError:
        raise SceneFileError(f"scenes file {path} is larger than {LIMIT // 2**20} MiB; it is not a scene list") from None
    except OSError as exc:
        what = "is a folder" if exc.errno == errno.EISDIR else (exc.strerror or str(exc))
        raise SceneFileError(f"cannot read scenes file {path}: {what}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SceneFileError(f"scenes file {path} is not text (UTF-8)") from None


def read_scene_list(path: str | os.PathLike) -> SceneList:
    """Read a --scenes file (see the module's docstring)."""
    path = Path(path)
    text = _read(path)
    rows = [r for r in csv.reader(io.StringIO(text)) if r and not r[0].lstrip().startswith("#")]
    header = next((i for i, r in enumerate(rows) if "Start Frame" in (c.strip() for c in r)), None)
    if header is not None:
        return _read_csv(path, rows, header)
    frames, times = set(), []
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if entry.isdigit():
            frames.add(int(entry))
            continue
        if ":" in entry or "." in entry:
            try:
                times.append(parse_time(entry))
                continue
            except ValueError:
                pass
        raise SceneFileError(
            f"{path}, line {number}: '{entry}' is neither a frame number (0-based) nor a time like 12.5 or 1:02.250"
        )
    return SceneList(frozenset(frames), tuple(sorted(times)))


def _read_csv(path: Path, rows: list[list[str]], header: int) -> SceneList:
    column = [c.strip() for c in rows[header]].index("Start Frame")
    frames = set()
    for number, row in enumerate(rows[header + 1 :], header + 2):
        if row[0].startswith("Timecode List"):
            continue
        try:
            frames.add(int(row[column]) - 1)  # list-scenes numbers frames from 1
        except (IndexError, ValueError):
            raise SceneFileError(f"{path}: row {number} has no Start Frame number") from None
    return SceneList(frozenset(f for f in frames if f > 0))
