"""Files the tool writes or reads beside the user's: never followed, never guessed, never replaced by surprise.

- A file this tool creates gets a random name and is created exclusively (``O_CREAT|O_EXCL|
  O_NOFOLLOW``): a link or a file already at that name makes the creation fail instead of
  writing through it or truncating it. It is filled, flushed and renamed into place.
- The output is put in place by a rename of such a file, so what ends up at the output's
  name is always a regular file of ours (a link there is replaced, never written through);
  without ``overwrite`` it is linked into place (``os.link`` fails when the name exists), so a
  file that appeared there during a long run is not replaced.
- User files that are read whole (a scene list, a work folder's JSON) are opened without
  following a final link, without blocking on a pipe, must be regular files, and are read up
  to a limit.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from pathlib import Path

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


def write_new(folder: Path, final_name: str, data: bytes) -> Path:
    """A new file of ours in ``folder`` holding ``data``, flushed to disk; its (temporary) path."""
    path = create_exclusive(folder, final_name)
    try:
        fd = os.open(path, os.O_WRONLY | O_NOFOLLOW | O_CLOEXEC)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        remove_file(path)
        raise
    return path


def atomic_write(path: Path, data: bytes) -> None:
    """Put ``data`` at ``path`` so that readers see the old or the new file, never a part; a link
    at ``path`` is replaced, not written through. Several processes may write the same file at
    once (``--part`` tasks): each uses a name of its own and the last rename wins, whole."""
    temp = write_new(path.parent, path.name, data)
    try:
        os.replace(temp, path)
    except BaseException:
        remove_file(temp)
        raise
    fsync_dir(path.parent)


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


def _open_regular(path: Path, flags: int) -> int:
    """A descriptor of the regular file ``path`` opened with ``flags``, never through a link and
    never blocking on a pipe or device (:class:`NotRegular` for those and for a folder)."""
    try:
        fd = os.open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotRegular(errno.ELOOP, "a symbolic link", str(path)) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotRegular(errno.EINVAL, "not a regular file", str(path))
    return fd


def read_limited(path: Path, limit: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` (raises :class:`NotRegular` for a
    link, pipe, device or folder and ``ValueError`` when the file is larger)."""
    with os.fdopen(_open_regular(path, os.O_RDONLY), "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"larger than {limit} bytes")
    return data


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


def put_in_place(temp: Path, output: Path, overwrite: bool) -> None:
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
            fsync_dir(output.parent)
            return
        os.unlink(temp)
    fsync_dir(output.parent)
