"""Where checkpoints live: a per-user cache directory, one file per entry plus a ``.sha256`` sidecar.

``<dir>/<filename>`` is only ever a complete, verified file (it is moved into place atomically);
``<dir>/<filename>.part`` holds a download in progress (kept so the next run can resume);
``<dir>/<filename>.sha256`` records its sha256 in ``sha256sum`` format; ``<dir>/.<filename>.lock``
is held while one process fetches the file (:func:`cache_lock`);
``<dir>/recorded-sha256.json`` holds, for a registry entry without a sha256, the one of the first
file verified under its name (later files under that name must match it);
``<dir>/imported/<name>.pth`` is a file imported under a user's own name (``--force``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from contextlib import contextmanager
from pathlib import Path

from stdan_cli.errors import DownloadError, OutputError
from stdan_cli.safe_files import NotRegular, atomic_write, kind_of, read_limited

HOME_ENV = "STDAN_HOME"


def user_cache_dir(app: str = "stdan") -> Path:
    """The platform's per-user cache directory for ``app`` (no platformdirs dependency)."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / app / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / app
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / app


def weights_dir(directory: str | os.PathLike | None = None) -> Path:
    """``directory`` if given, else ``$STDAN_HOME/weights``, else ``<user cache>/stdan/weights``."""
    if directory is not None:
        return Path(directory).expanduser()
    home = os.environ.get(HOME_ENV)
    return (Path(home).expanduser() if home else user_cache_dir()) / "weights"


def part_path(path: Path) -> Path:
    return path.with_name(path.name + ".part")


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_sidecar(path: Path) -> str | None:
    """The sha256 the sidecar of ``path`` records; None when there is none (or it is not a small
    regular file of ours: a link, a pipe or a device there is not read)."""
    try:
        text = read_limited(sidecar_path(path), SIDECAR_LIMIT).decode("ascii").split()
    except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
        return None
    return text[0].lower() if text and len(text[0]) == 64 else None


def check_sidecar(path: Path) -> None:
    """The sidecar of ``path`` may be written: absent, a regular file, or a link (replaced, never
    followed). A pipe, a device or a folder there is not the tool's, and is refused in one line
    (OutputError) rather than replaced."""
    sidecar = sidecar_path(path)
    if kind_of(sidecar) in ("other", "folder"):
        raise OutputError(f"{sidecar} is not a regular file (a pipe, a device or a folder); remove it")


def write_sidecar(path: Path, digest: str) -> None:
    check_sidecar(path)
    atomic_write(sidecar_path(path), f"{digest}  {path.name}\n".encode("ascii"))


def install_file(verified_tmp: Path, target: Path, digest: str) -> Path:
    """Move a complete, verified file into place (atomic rename: a link at ``target`` is replaced,
    never followed) and record its sha256 beside it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    write_sidecar(target, digest)
    os.replace(verified_tmp, target)
    return target


def human_size(n: int | float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


RECORDED = "recorded-sha256.json"
RECORDED_LIMIT = 1 << 20  # bytes of RECORDED read (one line per registry entry)
SIDECAR_LIMIT = 4096  # bytes of a .sha256 sidecar read (one line)
IMPORTED = "imported"
_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _read_records(cache: Path) -> dict:
    """The records of :data:`RECORDED` (empty when there is none or it is not JSON); a link, pipe
    or device there is refused without blocking (DownloadError)."""
    path = cache / RECORDED
    try:
        known = json.loads(read_limited(path, RECORDED_LIMIT).decode("utf-8"))
    except NotRegular:
        raise DownloadError(f"{path} is not a regular file (a link, a pipe or a device); remove it") from None
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


def recorded_sha256(cache: Path, name: str) -> str | None:
    """The sha256 recorded for registry entry ``name`` at its first verified download, if any."""
    value = _read_records(cache).get(name)
    return value.lower() if isinstance(value, str) and len(value) == 64 else None


def record_sha256(cache: Path, name: str, digest: str) -> Path:
    """Record ``digest`` as entry ``name``'s sha256 (atomically); returns the file."""
    path = cache / RECORDED
    known = _read_records(cache)
    known[name] = digest
    cache.mkdir(parents=True, exist_ok=True)
    atomic_write(path, (json.dumps(known, indent=1, sort_keys=True) + "\n").encode("utf-8"))
    return path


def imported_path(cache: Path, name: str) -> Path:
    """Where a checkpoint imported under the user's own ``name`` lives."""
    return cache / IMPORTED / f"{name}.pth"


def imported_checkpoints(cache: Path) -> list[tuple[str, Path]]:
    """The checkpoints imported under users' own names in ``cache``: (name, file), by name."""
    folder = cache / IMPORTED
    if not folder.is_dir():
        return []
    files = (p for p in folder.iterdir() if p.suffix == ".pth" and valid_user_name(p.stem) and p.is_file())
    return sorted((p.stem, p) for p in files)


def valid_user_name(name: str) -> bool:
    return bool(_USER_NAME.fullmatch(name))


@contextmanager
def cache_lock(target: Path):
    """Hold the lock of the cache file ``target`` (``.NAME.lock`` beside it; a second holder
    waits). The holder removes the lock file before it lets go, so none is left in the cache: a
    waiter that then gets the lock of the removed file sees that the name no longer leads to it
    and locks the file now there (or a new one) instead."""
    from stdan_cli.safe_files import NotRegular, open_lock_file

    try:
        import fcntl
    except ImportError:  # no advisory locks on this platform
        fcntl = None
    target.parent.mkdir(parents=True, exist_ok=True)
    path = target.with_name(f".{target.name}.lock")
    while True:
        try:
            handle = open_lock_file(path)
        except NotRegular:
            raise DownloadError(f"{path} is not a regular file; remove it") from None
        if fcntl is None:
            break
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            if os.path.samestat(os.fstat(handle.fileno()), os.stat(path, follow_symlinks=False)):
                break
        except FileNotFoundError:
            pass
        handle.close()  # the holder before removed this file
    try:
        yield
    finally:
        if fcntl is not None:
            path.unlink(missing_ok=True)  # still held: the file is ours to remove
        handle.close()
