"""Which checkpoint a run uses, as its summary names it: the registry's name when the file is
a registry checkpoint (its sha256 is the one the registry, or the cache's record of the first
verified download, knows), else the user's own name or the file's, marked as not official."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from stdan_cli.weights.registry import load_registry
from stdan_cli.weights.store import IMPORTED, recorded_sha256, sha256_file, weights_dir

SHOWN_DIGEST = 12  # hex digits of the sha256 a summary shows


@dataclass(frozen=True)
class WeightsIdentity:
    name: str  # the registry's name, the name it was imported under, or the file's name
    sha256: str  # of the file
    official: bool  # a registry checkpoint, byte for byte

    def text(self) -> str:
        """'weights stdan-vimeo, sha256 3f2a9c1e4b5d' (', not the official checkpoint' where so)."""
        note = "" if self.official else ", not the official checkpoint"
        return f"weights {self.name}, sha256 {self.sha256[:SHOWN_DIGEST]}{note}"


def identify_weights(path: str | os.PathLike, directory: str | os.PathLike | None = None) -> WeightsIdentity:
    """The identity of the checkpoint file ``path`` (its sha256 is computed: a file in the cache
    may have been changed since it was verified)."""
    path = Path(path)
    digest = sha256_file(path)
    cache = weights_dir(directory)
    for entry in load_registry().entries.values():
        if digest == (entry.sha256 or recorded_sha256(cache, entry.name)):
            return WeightsIdentity(entry.name, digest, True)
    if path.parent.name == IMPORTED and path.suffix == ".pth":
        return WeightsIdentity(path.stem, digest, False)
    return WeightsIdentity(path.name, digest, False)
