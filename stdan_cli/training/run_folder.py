"""The folder of a training run (``--out DIR``), and its marker ``run.json``.

A run folder is the tool's own: it is new or empty when a run begins there, and from then on
holds ``run.json``, which says what the run is (the resolved recipe, the data, each session's
command, versions, device, precision and world size) and which names in the folder the tool
made (``files``). The tool writes only names it has recorded there first and removes only
recorded names, one by one, never by a pattern. A folder that holds anything else and no
``run.json`` is refused before anything is written; so is a recorded name that is a link, a
pipe or a device now (everything is written by an exclusive create and a rename, and read
with :func:`stdan_cli.safe_files.read_limited`, which neither follows nor blocks).

Only the main process of a launch writes; the others see the folder read-only.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from stdan_cli.errors import OutputError
from stdan_cli.safe_files import NotRegular, atomic_write, kind_of, read_limited, remove_file

RUN_JSON = "run.json"
FORMAT = "stdan-run-1"
RUN_JSON_LIMIT = 16 << 20


@dataclass
class RunFolder:
    path: Path
    record: dict = field(default_factory=dict)  # run.json's content ({} before the run is claimed)
    writer: bool = True  # the main process

    @property
    def claimed(self) -> bool:
        return bool(self.record)

    @property
    def files(self) -> list[str]:
        return list(self.record.get("files", []))

    def owns(self, name: str) -> bool:
        return name in self.record.get("files", [])

    def check_own(self, name: str) -> None:
        """A name the run is about to read or replace: absent, or one it recorded that is a
        regular file (or the folder it made) now."""
        kind = kind_of(self.path / name)
        if kind is None:
            return
        if not self.owns(name):
            raise OutputError(f"{self.path / name} was not made by this run (run.json does not list it); "
                              f"move it away or choose another --out")
        if kind not in ("file", "folder"):
            raise OutputError(f"{self.path / name} is a {'link' if kind == 'link' else 'pipe or device'} now, "
                              f"not the file this run made; move it away to continue")

    def claim(self, run: dict) -> None:
        """Create the folder (when new) and write ``run.json`` with ``run``'s fields (the recipe,
        the data...) and this session appended to its ``sessions``."""
        if not self.writer:
            return
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create --out {self.path}: {exc.strerror or exc}") from None
        sessions = self.record.get("sessions", [])
        session = run.pop("session", None)
        self.record = {"format": FORMAT, "files": self.files, **{k: v for k, v in self.record.items()
                                                                  if k not in ("format", "files")}, **run}
        self.record["sessions"] = sessions + ([{"argv": list(sys.argv), **session}] if session else [])
        self._write()

    def record_file(self, name: str) -> None:
        """Add ``name`` to the names this run made, before it is written."""
        if self.writer and not self.owns(name):
            self.record["files"] = self.files + [name]
            self._write()

    def remove(self, name: str) -> None:
        """Remove the recorded file ``name`` (a regular file only) and forget it."""
        if not self.writer or not self.owns(name):
            return
        remove_file(self.path / name)
        self.record["files"] = [f for f in self.files if f != name]
        self._write()

    def _write(self) -> None:
        try:
            atomic_write(self.path / RUN_JSON, (json.dumps(self.record, indent=1) + "\n").encode())
        except OSError as exc:
            raise OutputError(f"cannot write {self.path / RUN_JSON}: {exc.strerror or exc}") from None


def open_run_folder(out: str | os.PathLike, writer: bool = True) -> RunFolder:
    """The run folder ``out`` as it is, without writing anything: new (absent or empty), or
    one whose ``run.json`` this tool wrote; anything else is a one-line OutputError."""
    path = Path(out)
    if not path.exists():
        if kind_of(path) == "link":
            raise OutputError(f"--out {path} is a link to nothing; choose a new or empty folder")
        return RunFolder(path, {}, writer)
    if not path.is_dir():
        raise OutputError(f"--out {path} exists and is not a folder")
    marker = path / RUN_JSON
    if kind_of(marker) is None:
        try:
            entries = next(os.scandir(path), None)
        except OSError as exc:
            raise OutputError(f"cannot read --out {path}: {exc.strerror or exc}") from None
        if entries is not None:
            raise OutputError(f"--out {path} holds files that stdan did not make (it has no {RUN_JSON}); "
                              f"choose a new or empty folder")
        return RunFolder(path, {}, writer)
    try:
        record = json.loads(read_limited(marker, RUN_JSON_LIMIT).decode("utf-8"))
    except NotRegular:
        raise OutputError(f"{marker} is not a regular file; choose another --out") from None
    except (OSError, ValueError) as exc:
        raise OutputError(f"{marker} is not a run record of stdan ({getattr(exc, 'strerror', None) or exc}); "
                          f"choose another --out") from None
    if not (isinstance(record, dict) and record.get("format") == FORMAT and isinstance(record.get("files"), list)
            and all(isinstance(f, str) and f and "/" not in f and f not in (".", "..") for f in record["files"])):
        raise OutputError(f"{marker} is not a run record of stdan; choose another --out")
    return RunFolder(path, record, writer)
