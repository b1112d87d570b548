"""Files the tool writes or reads beside the user's: never followed, never guessed, never replaced by surprise.

- A file this tool creates gets a random name and is created exclusively (``O_CREAT|O_EXCL|
  O_NOFOLLOW``): a link or a file already at that name makes the creation fail instead of
  writing through it or truncating it. It is filled, flushed and renamed into place.
- The output is put in place by a rename of such a file, so what ends up at the output's
  name is always a regular file of ours (a link there is replaced, never written through);
  without ``overwrite`` it is linked into place (``os.link`` fails when the name exists), so a
  file that appeared there during a long run is not replaced.
- User files that are read whole (a scene list, a clip list, a work folder's JSON, the weights
  cache's records) are opened without following a final link, without blocking on a pipe,
  must be regular files, and are read up to a limit (:func:`read_limited`).

The one rule for a file the user names as an output (upscale's OUTPUT, ``eval --json``,
``--scenes-out``, a training log, an exported engine...), in two calls:

1. Before any work, ``claim_output(path, reads=[files the command reads], overwrite=yes)``
   refuses (:class:`~stdan_cli.errors.OutputError`, one line) a name that is, or resolves to,
   a file the command reads (by device and inode: a link or a hard link to the input too, with
   ``-y`` or not); a FIFO, device or folder; a name that exists (a link too, dangling or not)
   without ``overwrite``; a missing or unwritable folder. ``yes`` names the verb's flag in the
   message (default ``-y/--overwrite``).
2. When the content is ready, ``write_output(path, data, overwrite)`` writes it to a random
   exclusive temporary name beside ``path`` and renames it into place (:func:`put_in_place`):
   a link at ``path`` is replaced, never written through; without ``overwrite`` a file that
   appeared during the run is kept (:class:`OutputAppeared`). A writer that streams a large
   file makes its temporary file with :func:`create_exclusive` and ends with
   :func:`put_in_place` itself.

A folder the tool fills (``eval --save-images``, a work folder) is new, empty, or carries a
marker file the tool wrote there (:func:`claim_folder`); a new one appears with its marker
already inside, so processes that claim it at the same time (``--part`` tasks) never see it
unmarked; subfolders are made with :func:`make_folders`, which never goes through a link.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

from stdan_cli.errors import OutputError

O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
TEMP_SUFFIX = ".tmp"


class NotRegular(OSError):
    """A path that had to be a regular file is something else (a link, a pipe, a device, a folder)."""


def kind_of(path: Path) -> str | None:
    """What is at ``path`` without following a link: 'file', 'link', 'folder', 'other' or None."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    return "other"


def temp_name(final_name: str) -> str:
    """A fresh hidden name for a file that will become ``final_name``: ``.NAME.<64 random bits>.tmp``."""
    return f".{final_name}.{secrets.token_hex(8)}{TEMP_SUFFIX}"


def create_exclusive(folder: Path, final_name: str, mode: int = 0o666) -> Path:
    """Create an empty file of ours in ``folder`` under a random name (see :func:`temp_name`) and
    return its path; nothing that already exists is opened or followed."""
    for _ in range(100):
        path = Path(folder) / temp_name(final_name)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        except FileExistsError:
            continue
        os.close(fd)
        return path
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(folder))


def write_new(folder: Path, final_name: str, data: bytes, sync: bool = True) -> Path:
    """A new file of ours in ``folder`` holding ``data``, flushed to disk (unless not ``sync``:
    many small files, such as frames, where a lost file after a power cut is made again); its
    (temporary) path."""
    return _new_file(folder, final_name, lambda f: f.write(data), sync)


def _new_file(folder: Path, final_name: str, fill: Callable[[BinaryIO], object], sync: bool) -> Path:
    """A new file of ours in ``folder`` (see :func:`create_exclusive`), filled by ``fill(f)`` and
    flushed to disk if ``sync``; removed again if filling fails. Its path."""
    path = create_exclusive(folder, final_name)
    try:
        with os.fdopen(os.open(path, os.O_WRONLY | O_NOFOLLOW | O_CLOEXEC), "wb") as f:
            fill(f)
            if sync:
                f.flush()
                os.fsync(f.fileno())
    except BaseException:
        remove_file(path)
        raise
    return path


def atomic_write(path: Path, data: bytes, sync: bool = True) -> None:
    """Put ``data`` at ``path`` so that readers see the old or the new file, never a part; a link
    at ``path`` is replaced, not written through. Several processes may write the same file at
    once (``--part`` tasks): each uses a name of its own and the last rename wins, whole.
    ``sync``: flushed to disk (see :func:`write_new`)."""
    temp = write_new(path.parent, path.name, data, sync)
    try:
        os.replace(temp, path)
    except BaseException:
        remove_file(temp)
        raise
    if sync:
        fsync_dir(path.parent)


def create_new(path: Path, data: bytes) -> bool:
    """Put ``data`` at ``path`` only if nothing is there, whole (a file of ours linked into
    place: the check and the creation are one step). True when this call made it; False when
    something was there already, which is kept. Of several processes that race, one wins."""
    temp = write_new(path.parent, path.name, data)
    try:
        put_in_place(temp, path, overwrite=False)
        return True
    except OutputAppeared:
        return False
    finally:
        remove_file(temp)


def sync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_file(path: Path) -> bool:
    """Remove ``path`` if it is a regular file (never a link's target, a folder or a device);
    True when something was removed."""
    if kind_of(path) != "file":
        return False
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def _open_regular(path: Path, flags: int, follow_links: bool = False) -> int:
    """A descriptor of the regular file ``path`` opened with ``flags``, never through a link (unless
    ``follow_links``) and never blocking on a pipe or device (:class:`NotRegular` for those and
    for a folder)."""
    nofollow = 0 if follow_links else O_NOFOLLOW
    try:
        fd = os.open(path, flags | nofollow | O_NONBLOCK | O_CLOEXEC, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotRegular(errno.ELOOP, "a symbolic link", str(path)) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotRegular(errno.EINVAL, "not a regular file", str(path))
    return fd


def read_limited(path: Path, limit: int, follow_links: bool = False) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` (raises :class:`NotRegular` for a
    link, pipe, device or folder and ``ValueError`` when the file is larger). ``follow_links``:
    a user's file named on the command line, read through a link (what it names must still be
    a regular file)."""
    with os.fdopen(_open_regular(path, os.O_RDONLY, follow_links), "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"larger than {limit} bytes")
    return data


def open_for_writing(path: Path, append: bool = False):
    """Open (creating it if needed) the regular file ``path`` to write, truncated or to ``append``
    to: a link is not followed and a pipe or device is refused without blocking (:class:`NotRegular`).
    For a file of a fixed name kept between runs (a resumable download); a new file gets a
    random name instead (:func:`create_exclusive`)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else 0)
    f = os.fdopen(_open_regular(path, flags), "ab" if append else "wb")
    if not append:
        f.truncate(0)
    return f


def copy_new(source: Path, folder: Path, final_name: str) -> Path:
    """A new file of ours in ``folder`` (a random exclusive name, see :func:`temp_name`) holding
    a copy of the regular file ``source`` (read through a link: a user's file), flushed to disk;
    its path. Nothing at a fixed name is opened or followed."""
    def fill(dst: BinaryIO) -> None:
        with os.fdopen(_open_regular(source, os.O_RDONLY, follow_links=True), "rb") as src:
            while block := src.read(1 << 20):
                dst.write(block)

    return _new_file(folder, final_name, fill, sync=True)


def open_lock_file(path: Path):
    """Open (creating it if needed) the regular file ``path`` for locking: a link is not followed
    and a pipe or device is refused without blocking (:class:`NotRegular`)."""
    return os.fdopen(_open_regular(path, os.O_RDWR | os.O_CREAT), "r+b")


def open_append(path: Path):
    """Open (creating it if needed) the regular file ``path`` to append to: a link is not
    followed (a dangling one is not created through) and a pipe or device is refused without
    blocking (:class:`NotRegular`)."""
    fd = _open_regular(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "ab")


class OutputAppeared(FileExistsError):
    """The output's name was taken during the run (and replacing it was not allowed)."""


def put_in_place(temp: Path, output: Path, overwrite: bool, sync: bool = True) -> None:
    """Rename the finished file ``temp`` to ``output``. With ``overwrite`` whatever is at
    ``output`` is replaced (a link itself, not its target); without it ``output`` must still be
    free (:class:`OutputAppeared` otherwise): the check and the rename are one step."""
    if overwrite:
        if kind_of(output) == "folder":
            raise IsADirectoryError(errno.EISDIR, "is a folder", str(output))
        os.replace(temp, output)
    else:
        try:
            os.link(temp, output, follow_symlinks=False)
        except FileExistsError:
            raise OutputAppeared(errno.EEXIST, "appeared during the run", str(output)) from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
                raise
            # A filesystem without hard links: the check and the rename are two steps there.
            if kind_of(output) is not None:
                raise OutputAppeared(errno.EEXIST, "appeared during the run", str(output)) from None
            os.replace(temp, output)
            if sync:
                fsync_dir(output.parent)
            return
        os.unlink(temp)
    if sync:
        fsync_dir(output.parent)


# --- the one rule for a user-named output file -----------------------------------------------


def _identity(path: str | os.PathLike) -> tuple[int, int] | None:
    """(device, inode) of what ``path`` names, through links; None when nothing is there."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def read_file_among(path: str | os.PathLike, reads: Iterable[str | os.PathLike]) -> str | None:
    """The first of ``reads`` that ``path`` is (the same file by device and inode: through a
    link or a hard link too); None when it is none of them."""
    target = _identity(path)
    if target is None:
        return None
    for read in reads:
        if read is not None and _identity(read) == target:
            return os.fspath(read)
    return None


def claim_output(path: str | os.PathLike, reads: Iterable[str | os.PathLike] = (), overwrite: bool = False,
                 what: str = "output", yes: str = "-y/--overwrite") -> Path:
    """Check, before any work, that the file ``path`` may be written by :func:`write_output`:
    it is none of ``reads`` (the files the command reads), not a FIFO, device or folder, does
    not exist unless ``overwrite`` (a link, dangling too, counts as existing and is never
    followed), and its folder exists and is writable. Raises :class:`OutputError` naming the
    option (``what``) and the flag that allows replacing (``yes``); returns ``path``."""
    path = Path(path)
    name = f"{what} {path}" if what else str(path)
    same = read_file_among(path, reads)
    if same is not None:
        read = "the input file" if what == "output" else f"a file this command reads ({same})"
        raise OutputError(f"{name} is {read}; choose another name (what a command reads is never overwritten)")
    kind = kind_of(path)
    if kind == "folder":
        raise OutputError(f"{name} is a directory")
    if kind == "other":
        raise OutputError(f"{name} is not a regular file (a pipe or a device); choose a file name")
    if kind is not None and not overwrite:
        link = " (a symbolic link, which is replaced, never followed)" if kind == "link" else ""
        raise OutputError(f"{name} already exists{link}; pass {yes} to replace it")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"cannot write {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"cannot write {path}: folder {parent} is not writable")
    return path


def write_output(path: str | os.PathLike, data: bytes, overwrite: bool = False, what: str = "output",
                 yes: str = "-y/--overwrite", sync: bool = True) -> None:
    """Put ``data`` at the claimed output ``path``: a random exclusive temporary file beside it,
    renamed into place (:func:`put_in_place`); errors are one-line :class:`OutputError`.
    ``sync``: flushed to disk (see :func:`write_new`)."""
    path = Path(path)
    name = f"{what} {path}" if what else str(path)
    try:
        temp = write_new(path.parent, path.name, data, sync)
    except OSError as exc:
        raise OutputError(f"cannot write {name}: {exc.strerror or exc}") from None
    try:
        put_in_place(temp, path, overwrite, sync)
    except OutputAppeared:
        raise OutputError(f"{name} appeared during the run; it was kept (pass {yes} to replace it)") from None
    except OSError as exc:
        raise OutputError(f"cannot write {name}: {exc.strerror or exc}") from None
    finally:
        remove_file(temp)


# --- folders the tool fills ----------------------------------------------------------------------


class FolderRefused(Exception):
    """A folder the tool may not fill; ``reason`` is 'link', 'not-folder', 'foreign', 'copied' or 'damaged'."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(detail or reason)
        self.reason = reason


@dataclass(frozen=True)
class FolderClaim:
    """A folder the tool may fill: ``created`` when the tool made it (this run or an earlier
    one, as its marker says), ``fresh`` when this call made it; ``marked`` holds the marker's fields."""

    path: Path
    created: bool
    fresh: bool
    marked: dict


MARKER_LIMIT = 64 * 1024


def folder_id(folder: Path) -> int:
    """What names the folder itself, so that a marker copied or moved elsewhere is told apart:
    its inode number (not the device number, which differs between the machines that mount one
    shared folder over NFS, as ``--part`` tasks do)."""
    return os.stat(folder, follow_symlinks=False).st_ino


def _marker(fields: dict, created: bool, folder: Path) -> tuple[dict, bytes]:
    """What the marker of ``folder`` says (``fields``, ``created`` and the folder's id), and its bytes."""
    data = {**fields, "created": created, "folder": folder_id(folder)}
    return data, (json.dumps(data, indent=1) + "\n").encode()


def _only_marker_temps(folder: Path, marker: str) -> bool:
    """True when ``folder`` holds nothing but temporary files of ``marker`` (and the marker
    itself, put there since it was looked for): empty, or being marked at this moment by
    another process that claims it too."""
    prefix = f".{marker}."
    return all(e.name == marker or (e.name.startswith(prefix) and e.name.endswith(TEMP_SUFFIX)
                                    and e.is_file(follow_symlinks=False))
               for e in os.scandir(folder))


def _libc_renameat2():
    """The C library's ``renameat2`` (Linux), or None."""
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_renameat2 = _libc_renameat2()
_AT_FDCWD, _RENAME_NOREPLACE = -100, 1  # from <fcntl.h> and <linux/fs.h>


def rename_folder_new(source: Path, target: Path) -> None:
    """Rename the folder ``source`` to ``target``, which must not exist (``FileExistsError``
    otherwise, and nothing is moved): one step where the system has ``renameat2`` with
    ``RENAME_NOREPLACE`` (Linux), a check and a rename elsewhere (a plain rename would
    replace an empty folder at ``target``)."""
    if _renameat2 is not None:
        if _renameat2(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), _RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            raise FileExistsError(err, os.strerror(err), str(target))
        if err not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):  # these say: no such flag here
            raise OSError(err, os.strerror(err), str(target))
    if kind_of(target) is not None:
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target))
    try:
        os.rename(source, target)
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise FileExistsError(exc.errno, exc.strerror, str(target)) from None
        raise


def _make_marked(folder: Path, marker: str, fields: dict) -> dict | None:
    """Make the folder ``folder`` with its marker already inside: a hidden folder of a random
    name beside it is made and marked, then renamed to ``folder`` in one step, so nobody ever
    sees ``folder`` without its marker (``--part`` tasks claim one work folder at the same
    time). The marker's fields, or None when ``folder`` appeared first (the hidden folder is
    removed again)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        temp = folder.parent / temp_name(folder.name)
        try:
            temp.mkdir()
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(errno.EEXIST, "no free temporary name", str(folder.parent))
    placed = False
    try:
        data, encoded = _marker(fields, True, temp)
        atomic_write(temp / marker, encoded)
        rename_folder_new(temp, folder)
        placed = True
    except FileExistsError:
        return None
    finally:
        if not placed:
            for entry in os.scandir(temp):
                remove_file(Path(entry.path))
            temp.rmdir()
    fsync_dir(folder.parent)
    return data


def _mark_empty(folder: Path, marker: str, fields: dict) -> dict | None:
    """Mark the empty folder ``folder`` that the tool did not make (:func:`create_new`: not
    when another process marked it first). The marker's fields, or None then."""
    data, encoded = _marker(fields, False, folder)
    return data if create_new(folder / marker, encoded) else None


def claim_folder(folder: str | os.PathLike, marker: str, fields: dict) -> FolderClaim:
    """Make the folder ``folder`` (and its parents), or take an empty one, and mark it with the
    file ``marker`` holding ``fields`` and ``created``; or take one that carries such a marker
    whose ``fields`` are equal and that was written in this very folder (the marker records the
    folder's :func:`folder_id`). Several processes may claim one folder at the same time: one
    makes or marks it, the others take it as marked. Raises :class:`FolderRefused`: 'link' (the
    folder is a symbolic link), 'not-folder', 'foreign' (not empty and no marker), 'copied' (a
    marker written for another folder: the files beside it are not the tool's) or 'damaged' (a
    marker that is not ours: unreadable, or of other fields)."""
    folder = Path(folder)
    kind = kind_of(folder)
    if kind is None:
        data = _make_marked(folder, marker, fields)
        if data is not None:
            return FolderClaim(folder, True, True, data)
        kind = kind_of(folder)
    if kind == "link":
        raise FolderRefused("link", f"{folder} is a symbolic link")
    if kind != "folder":
        raise FolderRefused("not-folder", f"{folder} exists and is not a folder")
    if kind_of(folder / marker) is None:
        if not _only_marker_temps(folder, marker):
            raise FolderRefused("foreign", f"{folder} is not empty and has no {marker}")
        data = _mark_empty(folder, marker, fields)
        if data is not None:
            return FolderClaim(folder, False, False, data)
    try:
        data = json.loads(read_limited(folder / marker, MARKER_LIMIT))
    except (OSError, ValueError) as exc:
        raise FolderRefused("damaged", f"{marker} cannot be read ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("created"), bool):
        raise FolderRefused("damaged", f"{marker} is not a marker of this tool")
    differ = [k for k in fields if data.get(k) != fields[k]]
    if differ:
        raise FolderRefused("damaged", f"{marker} has another {differ[0]} ({data.get(differ[0])!r})")
    if data.get("folder") != folder_id(folder):
        raise FolderRefused("copied", f"{marker} was written for another folder (copied or moved here)")
    return FolderClaim(folder, data["created"], False, data)


def make_folders(base: Path, relative: str | os.PathLike) -> Path:
    """``base / relative``, each folder below ``base`` made if missing; one that is a link or not
    a folder raises :class:`NotRegular` (nothing is made or written through a link)."""
    path = Path(base)
    for part in Path(relative).parts:
        if part in ("", ".", "..") or os.sep in part:
            raise NotRegular(errno.EINVAL, "not a plain name", str(relative))
        path = path / part
        try:
            os.mkdir(path)
        except FileExistsError:
            pass
        if kind_of(path) != "folder":
            raise NotRegular(errno.ENOTDIR, "a link or not a folder", str(path))
    return path
