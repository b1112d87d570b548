"""Known checkpoints, the per-user weights cache, downloading and verification.

- :func:`resolve_weights`: a name, a path or None (the default) -> the checkpoint file (cache only, no network).
- :func:`download_weights`: fetch, verify and install a checkpoint (``stdan download-weights``).
- :func:`list_entries`, :func:`default_weights_name`, :class:`WeightsEntry`: the registry.
- :func:`verify_checkpoint`: accept a file only if it is a safe, complete, matching STDAN state_dict.
"""

from stdan_cli.errors import DownloadError, RegistryError
from stdan_cli.weights.download import DownloadResult, download_weights
from stdan_cli.weights.registry import (
    WeightsEntry,
    default_weights_name,
    get_entry,
    list_entries,
    load_registry,
)
from stdan_cli.weights.resolve import resolve_weights
from stdan_cli.weights.store import weights_dir
from stdan_cli.weights.verify import VerifiedCheckpoint, verify_checkpoint

__all__ = [
    "resolve_weights",
    "default_weights_name",
    "WeightsEntry",
    "list_entries",
    "get_entry",
    "load_registry",
    "weights_dir",
    "download_weights",
    "DownloadResult",
    "DownloadError",
    "RegistryError",
    "verify_checkpoint",
    "VerifiedCheckpoint",
]
