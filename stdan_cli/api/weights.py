"""``stdan download-weights`` as functions: the registry, the cache, downloading and importing
(the weights package's own functions, offered here so that the command line has one way in)."""

from stdan_cli.weights import default_weights_name, download_weights, list_entries, weights_dir
from stdan_cli.weights.store import human_size, imported_checkpoints, read_sidecar

__all__ = ["default_weights_name", "download_weights", "human_size", "imported_checkpoints", "list_entries",
           "read_sidecar", "weights_dir"]
