"""The network as a library: load a checkpoint by path or registry name, describe it, run one window."""

from __future__ import annotations

import os
from pathlib import Path

from stdan_cli.model import LoadedModel, ModelDescriptor
from stdan_cli.model import describe_checkpoint as _describe
from stdan_cli.model import load_model as _load


def _checkpoint(checkpoint):
    """A path that exists stays a path; a name is looked up in the weights cache (as ``--weights``)."""
    if isinstance(checkpoint, (str, os.PathLike)) and not Path(checkpoint).expanduser().is_file():
        from stdan_cli.weights import resolve_weights

        return resolve_weights(checkpoint)
    return checkpoint


def load_model(checkpoint, device="cpu", dtype=None) -> LoadedModel:
    """:func:`stdan_cli.model.load_model` for what ``--weights`` takes: a path, a registry name
    (``"stdan-vimeo"``) or its file name (``"STDAN_20220306.pth"``) found in the weights cache
    (``stdan download-weights`` puts it there), or a state_dict, plain or wrapped."""
    import torch

    return _load(_checkpoint(checkpoint), device=device, dtype=dtype or torch.float32)


def describe_checkpoint(checkpoint) -> ModelDescriptor:
    """:func:`stdan_cli.model.describe_checkpoint` for what :func:`load_model` takes."""
    return _describe(_checkpoint(checkpoint))
