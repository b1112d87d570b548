"""Find the checkpoint to run: a registry name or a path, looking only in the cache (no network)."""

from __future__ import annotations

import os
from pathlib import Path

from stdan_cli.errors import WeightsNotFound
from stdan_cli.weights.registry import load_registry
from stdan_cli.weights.store import imported_path, valid_user_name, weights_dir

_CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin", ".safetensors")


def _looks_like_path(spec: str) -> bool:
    return os.sep in spec or "/" in spec or spec.startswith((".", "~")) or spec.lower().endswith(_CHECKPOINT_SUFFIXES)


def resolve_weights(spec: str | os.PathLike | None = None, *, directory: str | os.PathLike | None = None) -> Path:
    """The checkpoint file for ``spec``: None = the default entry, a registry name, or a path.

    Raises :class:`WeightsNotFound` (one line naming both remedies) when nothing is available.
    Never touches the network: registry names are only looked up in the cache directory.
    """
    if spec is not None and not isinstance(spec, str):
        spec = os.fspath(spec)
        path = Path(spec).expanduser()
        if path.is_file():
            return path
        raise WeightsNotFound(f"weights file {path} does not exist" + (" (it is a directory)" if path.is_dir() else ""))
    if spec:
        path = Path(spec).expanduser()
        if path.is_file():
            return path
        if path.is_dir():
            raise WeightsNotFound(f"--weights {path} is a directory; pass the checkpoint file or a name from `stdan download-weights --list`")
    registry = load_registry()
    name = spec or registry.default
    if name not in registry.entries and valid_user_name(name) and imported_path(weights_dir(directory), name).is_file():
        return imported_path(weights_dir(directory), name)  # imported under the user's own name (--force)
    if name not in registry.entries:
        # an entry's file name without a folder ("STDAN_20220306.pth"): that entry, from the cache
        name = next((e.name for e in registry.entries.values() if spec == e.filename), name)
    if name not in registry.entries:
        if spec and _looks_like_path(spec):
            known = ", ".join(sorted(registry.entries))
            raise WeightsNotFound(f"weights file {spec} does not exist (give a checkpoint's path, or a registry "
                                  f"name: {known}, which `stdan download-weights NAME` fetches)")
        known = ", ".join(sorted(registry.entries))
        raise WeightsNotFound(f"unknown weights '{name}': not a file and not a known checkpoint (known: {known})")
    entry = registry.entries[name]
    cache = weights_dir(directory)
    path = cache / entry.filename
    if path.is_file():
        return path
    command = "stdan download-weights" + ("" if name == registry.default else f" {name}")
    raise WeightsNotFound(
        f"no STDAN weights found (looked for '{name}' in {cache}); run `{command}` or pass --weights PATH"
    )
