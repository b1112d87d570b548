"""A job's work folder: only what this tool made in it is ever read back as its own or removed.

- A folder the tool creates, or an empty one it is given, gets a marker file
  (:data:`MARKER`) that names the folder it was made in (its inode number); a folder that
  exists, is not empty and has no marker of its own is refused, so ``--work-dir .`` or
  ``--work-dir ~`` can never lose a file, and neither can a folder into which a marker (or a
  whole work folder) was copied. The folder itself must not be a symbolic link.
- Every name in it is derived: the manifest, the lock, the marker, and for chunk ``k``
  ``chunk_name(k, ext)`` and ``record_name(k)``. ``--restart`` and success remove only the
  names the manifest records (its chunks, with the extension it records; nothing else that
  merely looks like a chunk) and temporary files of those names (regular files only, never a
  link's target), then the folder if this tool created it and it is empty.
- New files get random names created exclusively and are renamed into place; the lock is a
  regular file opened without following links or blocking on a pipe.
- One class serves a run that owns the folder (``shared=False``: an exclusive lock, strays of
  killed runs removed) and ``--part`` tasks that share it (a shared lock; each removes only its
  own chunks' files).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Iterable

from stdan_cli.errors import OutputError, WorkFolderError
from stdan_cli.jobs.manifest import (
    EXTENSION,
    FORMAT,
    MANIFEST,
    DoneRecord,
    Manifest,
    chunk_name,
    file_sha256,
    read_manifest,
    read_record,
    record_name,
)
from stdan_cli.jobs.plan import ChunkSpec
from stdan_cli.jobs.strict_json import Damaged
from stdan_cli.safe_files import (
    FolderRefused,
    NotRegular,
    atomic_write,
    claim_folder,
    create_exclusive,
    create_new,
    fsync_dir,
    kind_of,
    open_lock_file,
    remove_file,
    write_new,
)

MARKER = "stdan-work-folder.json"
_WHAT = "stdan-cli work folder: chunks of one upscaling job"
LOCK = "lock"
_RECORD = re.compile(r"chunk-\d{6}\.done\.json")


def _temp_pattern(extension: str) -> re.Pattern:
    """Temporary files (see :func:`stdan_cli.safe_files.temp_name`) of the names a job with
    chunks ``*extension`` writes: left by a killed run of it."""
    ours = rf"{re.escape(MANIFEST)}|{re.escape(MARKER)}|chunk-\d{{6}}(?:\.done\.json|{re.escape(extension)})"
    return re.compile(rf"\.(?:{ours})\.[0-9a-f]{{16}}\.tmp")


NotifyFn = Callable[[str], None]


def default_work_dir(output: Path) -> Path:
    return output.with_name(f".{output.name}.stdan-job")


class Workspace:
    """The work folder ``folder`` of a job whose chunks are ``*extension`` files, open and locked
    (exclusively, or shared with other ``--part`` tasks). :meth:`close` unlocks it. ``apart``:
    the job's input and output, refused inside the folder (its chunk names could be theirs)."""

    def __init__(self, folder: Path, extension: str, shared: bool = False, busy: str = "another stdan run",
                 apart: Iterable[Path] = ()):
        if not EXTENSION.fullmatch(extension):
            raise OutputError(f"the output's extension {extension!r} cannot name chunk files; use e.g. .mp4 or .mkv")
        self.dir = Path(folder)
        self.extension = extension
        self.shared = shared
        self.done: dict[int, DoneRecord] = {}
        self.fresh = False  # this run created the folder
        self.apart = [Path(p) for p in apart]
        self.created = self._open_folder()  # this tool created it (this run or an earlier one)
        self._lock = None
        try:
            self._lock = self._take_lock(busy)  # before anything in the folder is read or removed
        except BaseException:
            self.close(remove=self.fresh)
            raise
        if not shared:
            for name in self._names(_temp_pattern(extension)):  # left by a killed run of this job
                remove_file(self.dir / name)

    # --- opening ---------------------------------------------------------------------------

    def _open_folder(self) -> bool:
        """Make or check the folder and its marker (:func:`claim_folder`); True when this tool created it."""
        d = self.dir
        if kind_of(d) is None or (kind_of(d) == "folder" and kind_of(d / MARKER) is None
                                  and not any(True for _ in os.scandir(d))):
            self._check_apart()  # before the folder is made or marked
        try:
            claim = claim_folder(d, MARKER, {"format": FORMAT, "what": _WHAT})
        except FolderRefused as exc:
            if exc.reason == "link":
                raise WorkFolderError(f"work folder {d} is a symbolic link, which stdan does not follow; "
                                      "pass the real folder with --work-dir") from None
            if exc.reason == "not-folder":
                raise WorkFolderError(f"work folder {d} exists and is not a folder; remove it or pass another "
                                      "--work-dir") from None
            if exc.reason == "foreign":
                raise WorkFolderError(
                    f"work folder {d} is not empty and was not made by stdan (it has no {MARKER}); stdan removes "
                    "only what it made, so pass a new or empty folder with --work-dir") from None
            if exc.reason == "copied":
                raise WorkFolderError(
                    f"work folder {d} holds a {MARKER} that stdan made for another folder (it was copied or moved "
                    "here), so its files are not stdan's; pass a new or empty folder with --work-dir") from None
            raise WorkFolderError(f"work folder {d} cannot be used: {MARKER} is damaged ({exc}; another stdan-cli "
                                  "version?); remove the folder or pass another --work-dir") from None
        except OSError as exc:
            raise OutputError(f"cannot create work folder {d}: {exc.strerror or exc}") from None
        self._check_apart()
        self.fresh = claim.fresh
        return claim.created

    def _check_apart(self) -> None:
        folder = self.dir.resolve()
        for path in self.apart:  # by its name, and where a link there leads
            if folder in (path.parent.resolve(), path.resolve().parent):
                raise WorkFolderError(f"the work folder {self.dir} would hold {path}; the work folder holds only "
                                      "the job's own files, so pass another --work-dir")

    def _take_lock(self, busy: str):
        try:
            import fcntl
        except ImportError:  # no advisory locks on this platform
            return None
        try:
            handle = open_lock_file(self.dir / LOCK)
        except NotRegular:
            raise WorkFolderError(f"the lock {self.dir / LOCK} of the work folder is not a regular file; "
                                  "remove it") from None
        except OSError as exc:
            raise OutputError(f"cannot lock the work folder {self.dir}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(handle, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise OutputError(f"{busy} is using the work folder {self.dir}; wait for it or stop it") from None
        return handle

    def _names(self, pattern: re.Pattern) -> list[str]:
        return sorted(e.name for e in os.scandir(self.dir) if pattern.fullmatch(e.name))

    # --- the manifest ----------------------------------------------------------------------

    def damaged(self, what: str, exc: Exception) -> WorkFolderError:
        return WorkFolderError(f"the work folder {self.dir} is damaged ({what}: {exc}); "
                               "pass --restart to discard its chunks and start over")

    def load_manifest(self) -> Manifest | None:
        try:
            return read_manifest(self.dir / MANIFEST)
        except Damaged as exc:
            raise self.damaged(MANIFEST, exc) from None

    def save_manifest(self, manifest: Manifest) -> None:
        self._check_free(MANIFEST)
        atomic_write(self.dir / MANIFEST, manifest.to_json())

    def publish_manifest(self, manifest: Manifest) -> bool:
        """Create the manifest only if there is none (one of several tasks wins); True if this one did."""
        return create_new(self.dir / MANIFEST, manifest.to_json())

    # --- chunks ----------------------------------------------------------------------------

    def chunk_path(self, index: int) -> Path:
        return self.dir / chunk_name(index, self.extension)

    def new_file(self, final_name: str) -> Path:
        """An empty file of ours to be renamed to ``final_name`` by :meth:`commit`."""
        return create_exclusive(self.dir, final_name)

    def commit(self, temp: Path, final_name: str) -> None:
        self._check_free(final_name)
        os.replace(temp, self.dir / final_name)
        fsync_dir(self.dir)

    def _check_free(self, name: str) -> None:
        """A name of ours must be free or a regular file: a link or folder there is not replaced."""
        if kind_of(self.dir / name) not in (None, "file"):
            raise self.damaged(name, "not a regular file; remove it")

    def store(self, record: DoneRecord, data: bytes | None = None) -> None:
        """Record chunk ``record.spec.index`` as done (with ``data``: write its file first)."""
        index = record.spec.index
        if data is not None:
            self.commit(write_new(self.dir, chunk_name(index, self.extension), data), chunk_name(index, self.extension))
        self._check_free(record_name(index))
        atomic_write(self.dir / record_name(index), record.to_json())
        self.done[index] = record

    def load_done(self, chunks: Iterable[ChunkSpec], notify: NotifyFn) -> None:
        """The done chunks among ``chunks``, each checked: its record agrees with the plan in every
        number and names its derived file, which is a regular file of the recorded size and
        sha256. Anything else is discarded (with a notice) to be made again."""
        for spec in chunks:
            index = spec.index
            try:
                record = read_record(self.dir / record_name(index))
                problem = None if record is None else (record.problem(spec, self.extension) or self._check_file(record))
            except Damaged as exc:
                problem = f"has a corrupt record ({exc})"
            if problem:
                notify(f"chunk {index} {problem}; it will be made again")
                self.discard(index)
            elif record is not None:
                self.done[index] = record
            else:
                self.done.pop(index, None)

    def _check_file(self, record: DoneRecord) -> str | None:
        path = self.chunk_path(record.spec.index)
        kind = kind_of(path)
        if kind is None:
            return "is missing"
        if kind != "file":
            return "is not a regular file"
        if path.stat().st_size != record.bytes:
            return "has the wrong size"
        if file_sha256(path) != record.sha256:
            return "does not match its sha256"
        return None

    def discard(self, index: int) -> None:
        """Remove chunk ``index``'s record and file (made again later)."""
        remove_file(self.dir / record_name(index))
        remove_file(self.chunk_path(index))
        self.done.pop(index, None)

    def done_outputs(self) -> int:
        """Output frames of the chunks known to be done."""
        return sum(r.spec.outputs for r in self.done.values())

    def kept_chunks(self) -> int:
        """Done records on disk (an interrupt can land after one was written but before it was noted)."""
        return len(self._names(_RECORD))

    # --- removing what is ours ---------------------------------------------------------------

    def reset(self) -> None:
        """``--restart``: remove the manifest and the files of the chunks it records, with the
        extension it records (a damaged manifest records none: only it goes), and temporary
        files of those names."""
        try:
            recorded = read_manifest(self.dir / MANIFEST)
        except Damaged:
            recorded = None
        names = [MANIFEST]
        if recorded is not None:
            for spec in recorded.chunks:
                names += [chunk_name(spec.index, recorded.extension), record_name(spec.index)]
        extensions = {self.extension} | ({recorded.extension} if recorded is not None else set())
        for extension in sorted(extensions):
            names += self._names(_temp_pattern(extension))
        for name in names:
            remove_file(self.dir / name)
        self.done.clear()

    def close(self, remove: bool = False) -> None:
        """Unlock; with ``remove`` also remove every file of the job (and the folder, if this job
        made it and nothing else is in it)."""
        if remove and self.shared:  # other tasks' files stay; the folder goes only if nothing else is in it
            remove = set(os.listdir(self.dir)) <= {LOCK, MARKER}
        if remove:
            self.reset()
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        if remove:
            remove_file(self.dir / LOCK)
            remove_file(self.dir / MARKER)
            if self.created:
                try:
                    os.rmdir(self.dir)
                except OSError:  # something else is in it: left as it is
                    pass
