"""Tiny seeded training data for the training tests: a Vimeo-90K septuplet folder and
septuplets of smooth moving content (so that a few steps of training can lower the loss)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from stdan_cli.evaluation.datasets import vimeo_ids
from stdan_cli.evaluation.images import write_png


def moving_frames(seed: int, n: int = 7, size: tuple[int, int] = (48, 40)) -> list[np.ndarray]:
    """``n`` frames (H, W, 3) uint8 of a seeded smooth pattern moving one pixel a frame."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    fx, fy, ph = rng.uniform(0.05, 0.3, 3), rng.uniform(0.05, 0.3, 3), rng.uniform(0, 6, 3)
    frames = []
    for t in range(n):
        planes = [0.5 + 0.5 * np.sin(fx[c] * (x + t) + fy[c] * y + ph[c]) for c in range(3)]
        frames.append((np.stack(planes, -1) * 255).round().astype(np.uint8))
    return frames


def vimeo_folder(root: Path, train: int = 3, test: int = 1, size: tuple[int, int] = (48, 40)) -> Path:
    """ROOT/sequences/<id>/im1..im7.png with sep_trainlist.txt naming ``train`` septuplets, and the
    first ``test`` clips of the official vimeo-fast list (for validation)."""
    ids = [f"00001/{k:04d}" for k in range(1, train + 1)]
    for k, cid in enumerate(ids + vimeo_ids("vimeo-fast")[:test]):
        for t, frame in enumerate(moving_frames(k, 7, size), 1):
            write_png(root / "sequences" / cid / f"im{t}.png", frame)
    (root / "sep_trainlist.txt").write_text("\n".join(ids) + "\n")
    return root


def one_torch_thread():
    """For an autouse fixture: PyTorch on one thread for the test, restored after (on a loaded
    2-core machine two threads make a training step many times slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
