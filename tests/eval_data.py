"""Tiny evaluation datasets written by the eval tests, in each layout `stdan eval` accepts.

Helpers only, imported by the test_eval_* modules (tests/test_eval_datasets.py checks the
content is not trivially flat and moves between frames).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from stdan_cli.evaluation.datasets import vimeo_ids
from stdan_cli.evaluation.images import write_png
from stdan_cli.evaluation.resize import bicubic_down


def scene(t: int, h: int, w: int, seed: int) -> np.ndarray:
    """Real-looking uint8 RGB: smooth gradients, a textured bar and a disc moving with t, noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([60 + 110 * xx / w, 40 + 130 * yy / h, 128 + 50 * np.sin(xx / 6.0 + yy / 9.0 + 0.3 * t)], -1)
    bar = (np.abs(yy - (h * 0.7 - 2 * t)) < h / 10) & (xx > w / 8)
    img[bar] = (200 + 40 * np.sin(xx[bar] / 2.0))[:, None] * np.array([1.0, 0.9, 0.5])
    disc = (yy - h / 2 - 2 * t) ** 2 + (xx - w / 3 - 3 * t) ** 2 < (h / 6) ** 2
    img[disc] = [220, 60, 40]
    img += rng.normal(0, 3, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def make_vimeo(root: Path, n_clips: int = 2, layout: str = "zip", lr: str | None = None,
               h: int = 64, w: int = 96, dataset: str = "vimeo-fast") -> list[str]:
    """The first ``n_clips`` clips of the list under ``root``. layout: ``zip`` (sequences/<id>) or
    ``test`` (sequences/test/<id>); lr: None, ``all`` (LR_test im1..im7) or ``inputs`` (im1,3,5,7)."""
    ids = vimeo_ids(dataset)[:n_clips]
    for n, cid in enumerate(ids):
        base = root / "sequences" / cid if layout == "zip" else root / "sequences" / "test" / cid
        for t in range(7):
            gt = scene(t, h, w, seed=10 * n + t)
            write_png(base / f"im{t + 1}.png", gt)
            if lr == "all" or (lr == "inputs" and t % 2 == 0):
                write_png(root / "LR_test" / cid / f"im{t + 1}.png", bicubic_down(gt))
    return ids


def make_vid4(root: Path, clips: dict[str, int] | None = None, lr: bool = False, h: int = 64, w: int = 80) -> None:
    """Vid4 layout: hr/<clip>/NNNNNNNN.png and, with lr, lr_x4/<clip>/ (MATLAB bicubic of hr)."""
    clips = clips or {"calendar": 9, "city": 8}
    for n, (name, count) in enumerate(clips.items()):
        for t in range(count):
            gt = scene(t, h, w, seed=100 + 10 * n + t)
            write_png(root / "hr" / name / f"{t:08d}.png", gt)
            if lr:
                write_png(root / "lr_x4" / name / f"{t:08d}.png", bicubic_down(gt))


def small_weights(path: Path) -> Path:
    """A checkpoint of the small configuration (random, seeded)."""
    from stdan_cli.model import STDAN, STDANConfig

    torch.manual_seed(0)
    torch.save(STDAN(STDANConfig.small()).state_dict(), path)
    return path
