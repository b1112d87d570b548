"""Where prepared engines are kept, and how a damaged one is recognised.

Engines are cached in the tool's own cache folder, ``engines/`` beside its ``weights/``
(``$STDAN_HOME/engines`` or ``<user cache>/stdan/engines``; ``$STDAN_ENGINE_CACHE`` overrides
it), never beside a user's checkpoint, which may be read-only or shared. Each entry is a file
under a folder named by its key: the weights' sha256, the backend and its version, the part,
the shape and the precision (:class:`EngineKey`). The weights' sha256 is computed from the
weights as loaded (:func:`stdan_cli.model.loader.state_dict_sha256`, what the job's manifest
records too), never read from a checkpoint's ``.sha256`` sidecar, which new weights copied
over the file leave stale. Beside every engine file a ``.sha256`` sidecar records its digest
when it was complete: a file whose digest differs (truncated, overwritten) or that its
runtime cannot load is removed and prepared again.

Files appear complete or not at all: they are written under a new random name in the same
folder (created exclusively, with the umask's permissions like every file the tool writes)
and renamed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from stdan_cli.safe_files import create_exclusive, remove_file
from stdan_cli.weights.store import read_sidecar, sha256_file, sidecar_path, weights_dir, write_sidecar

CACHE_ENV = "STDAN_ENGINE_CACHE"
FOLDER = "engines"


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


def cache_root() -> Path:
    """``$STDAN_ENGINE_CACHE``, else ``engines`` in the tool's cache folder (beside its weights store)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return weights_dir().parent / FOLDER


def is_intact(path: Path) -> bool:
    """The file exists and its digest equals the one its sidecar recorded."""
    recorded = read_sidecar(path)
    return path.is_file() and recorded is not None and sha256_file(path) == recorded


def new_file(path: Path) -> Path:
    """A new, exclusively created file beside ``path`` to write into before :func:`commit`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return create_exclusive(path.parent, path.name)


def commit(tmp: Path, path: Path) -> None:
    """Move the complete ``tmp`` to ``path`` and record its digest."""
    digest = sha256_file(tmp)
    os.replace(tmp, path)
    write_sidecar(path, digest)


def discard(path: Path) -> None:
    """Remove a cache entry this module wrote (the file and its sidecar)."""
    remove_file(path)
    remove_file(sidecar_path(path))
