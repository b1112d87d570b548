"""Where prepared engines are kept, and how a damaged one is recognised.

Engines are cached beside the weights: ``<weights folder>/stdan-engines/`` (or
``$STDAN_ENGINE_CACHE``; the per-user cache when the weights' folder cannot be written).
Each entry is a file under a folder named by its key: the weights' sha256, the backend and
its version, the part, the shape and the precision (:class:`EngineKey`). Beside every file a
``.sha256`` sidecar records its digest when it was complete: a file whose digest differs
(truncated, overwritten) or that its runtime cannot load is removed and prepared again.

Files appear complete or not at all: they are written under a new random name in the same
folder and renamed.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from stdan_cli.weights.store import read_sidecar, sha256_file, sidecar_path, user_cache_dir, write_sidecar

CACHE_ENV = "STDAN_ENGINE_CACHE"
FOLDER = "stdan-engines"


@dataclass(frozen=True)
class EngineKey:
    weights_sha256: str
    backend: str  # the artefact's maker, e.g. "onnx" (the exported files ORT and OpenVINO share)
    version: str  # of the backend or exporter
    part: str  # "features" or "reconstruct-n4"
    shape: str  # "dynamic" or "64x112"
    precision: str

    def path(self, root: Path, suffix: str) -> Path:
        return root / self.weights_sha256[:16] / f"{self.backend}-{self.version}" / f"{self.part}-{self.shape}-{self.precision}{suffix}"


def cache_root(weights_path: str | os.PathLike | None) -> Path:
    """``$STDAN_ENGINE_CACHE``, else ``stdan-engines`` beside the weights when that folder can
    be written, else ``<user cache>/stdan/engines``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    if weights_path is not None:
        folder = Path(weights_path).expanduser().resolve().parent
        if os.access(folder, os.W_OK):
            return folder / FOLDER
    return user_cache_dir() / "engines"


def weights_sha256(weights_path: str | os.PathLike) -> str:
    """The checkpoint's sha256: its verified sidecar in the weights store, else computed."""
    path = Path(weights_path)
    return read_sidecar(path) or sha256_file(path)


def is_intact(path: Path) -> bool:
    """The file exists and its digest equals the one its sidecar recorded."""
    recorded = read_sidecar(path)
    return path.is_file() and recorded is not None and sha256_file(path) == recorded


def new_file(path: Path) -> Path:
    """A new, exclusively created file beside ``path`` to write into before :func:`commit`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def commit(tmp: Path, path: Path) -> None:
    """Move the complete ``tmp`` to ``path`` and record its digest."""
    digest = sha256_file(tmp)
    os.replace(tmp, path)
    write_sidecar(path, digest)


def discard(path: Path) -> None:
    """Remove a cache entry this module wrote (the file and its sidecar)."""
    path.unlink(missing_ok=True)
    sidecar_path(path).unlink(missing_ok=True)
