"""The first run: the default checkpoint is downloaded (and verified) when a command needs it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from stdan_cli.errors import WeightsNotFound
from stdan_cli.weights.download import download_weights, hub_offline
from stdan_cli.weights.resolve import resolve_weights


def weights_for_run(spec: str | os.PathLike | None, *, offline: bool = False, quiet: bool = False) -> Path:
    """The checkpoint for ``--weights spec``. When ``spec`` is None (the default) and it is not
    in the cache, it is fetched with the verified flow of ``stdan download-weights`` (with its
    progress bar unless ``quiet``), unless ``offline`` or HF_HUB_OFFLINE is set: then the
    usual message saying how to get it is raised."""
    try:
        return resolve_weights(spec)
    except WeightsNotFound:
        if spec is not None or offline or hub_offline():
            raise
    result = download_weights(None, quiet=quiet)
    if result.recorded_in is not None and not quiet:
        print(f"notice: the registry has no sha256 for '{result.entry.name}'; this file's ({result.sha256[:16]}...) "
              f"was recorded in {result.recorded_in}, and every later file under this name must match it",
              file=sys.stderr)
    return result.path
