"""Training checkpoints: everything a run needs to continue exactly, in a file that
``stdan upscale --weights`` and ``stdan eval --weights`` load as they are.

The file is a dict read with ``torch.load(weights_only=True)`` (tensors, numbers, strings,
lists, tuples, dicts: nothing that runs code). The network is under ``params``, which the
model loader already unwraps (as for BasicSR checkpoints); beside it the optimizer, the
scheduler, the iteration, the recipe and every RNG state. It is written to a temporary file
with a random name in the same folder, then renamed over the old one: a run killed while
saving leaves the previous checkpoint whole.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from stdan_cli.errors import CheckpointError, OutputError
from stdan_cli.model import read_state_dict
from stdan_cli.model.loader import load_checkpoint_file
from stdan_cli.safe_files import O_CLOEXEC, O_NOFOLLOW, create_exclusive, fsync_dir, remove_file

FORMAT = "stdan-train-1"
LAST = "last.pth"


def rng_states() -> dict:
    """Python's, NumPy's legacy global, PyTorch's CPU and (when present) CUDA generators."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    states = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict) -> None:
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    n = states["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(path: Path, *, model: torch.nn.Module, optimizer, scaler, iteration: int, recipe: dict,
                    schedule: dict, extra: dict | None = None, copies: Sequence[Path] = ()) -> None:
    """Write the training state atomically (see the module's docstring) at ``path`` and at
    each of ``copies`` (the periodic checkpoints)."""
    state = {
        "format": FORMAT,
        "params": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": schedule,
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "iteration": iteration,
        "recipe": recipe,
        "rng": rng_states(),
        **(extra or {}),
    }
    for target in [path, *copies]:
        write_state(target, state)


def write_state(path: Path, state: dict) -> None:
    """``torch.save(state)`` at ``path`` atomically (see the module's docstring)."""
    tmp = None
    try:
        tmp = create_exclusive(path.parent, path.name)
        with os.fdopen(os.open(tmp, os.O_WRONLY | O_NOFOLLOW | O_CLOEXEC), "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException as exc:
        if tmp is not None:
            remove_file(tmp)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write checkpoint {path}: {exc.strerror or exc}") from None
        raise


def load_checkpoint(path: Path) -> dict:
    """A training checkpoint written by :func:`save_checkpoint` (weights_only)."""
    state = load_checkpoint_file(path)  # read once; one-line errors for a file that is unreadable or unsafe
    read_state_dict(state)  # ... or that holds no state_dict
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a training checkpoint of stdan train/finetune, so there is no run "
                              f"to resume in {path.parent}; choose another --out")
    return state
