"""The paper's test protocol: which frames go in, which outputs are scored, how LR is made.

- Vimeo-90K: one window per septuplet: LR frames 1, 3, 5, 7 in, the 7 outputs scored
  against ground-truth frames 1..7.
- Vid4 (the official ``test.py`` with ``test_index_generation(skip=True, 7, n)``): windows of 7
  ground-truth frames whose even positions are the 4 inputs, advancing by 6 (a window's last
  input is the next window's first), plus a last window aligned to the clip's end. Every frame
  is scored once, from the first window that produces it. When ``n - 1`` is not a multiple of 6
  the last window's inputs are the frames ``n-7, n-5, n-3, n-1``; for an even ``n`` (city, 34
  frames) those are odd-numbered frames, so the last frame is produced as an input frame, not
  left unscored. This is what the authors' notebook run did (34 of 34 city frames scored).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stdan_cli.errors import DatasetError
from stdan_cli.evaluation.datasets import DATASET_SPECS, VIMEO_FRAMES, VIMEO_INPUTS, Protocol
from stdan_cli.evaluation.resize import bicubic_down, blur_down

SCALE = 4
N_OUT = 7  # outputs of one window of 4 inputs
DEGRADATIONS = {"bi": bicubic_down, "bd": blur_down}


@dataclass(frozen=True)
class ScoredWindow:
    """One run of the model: ``inputs`` are ground-truth indices of the LR frames fed in;
    output k is ground-truth frame ``first + k``; ``scored`` lists the frames scored from it."""

    first: int
    inputs: tuple[int, ...]
    scored: tuple[int, ...]

    @property
    def skip(self) -> int:
        """Leading outputs not needed (already scored from an earlier window)."""
        return self.scored[0] - self.first


def vid4_windows(n_frames: int) -> list[ScoredWindow]:
    """Windows covering a clip of ``n_frames`` ground-truth frames, every frame scored once."""
    if n_frames < N_OUT:
        raise DatasetError(f"a clip needs at least {N_OUT} frames, got {n_frames}")
    starts = list(range(0, n_frames - N_OUT + 1, N_OUT - 1))
    if starts[-1] + N_OUT < n_frames:
        starts.append(n_frames - N_OUT)
    windows, done = [], set()
    for a in starts:
        scored = tuple(i for i in range(a, a + N_OUT) if i not in done)
        done.update(scored)
        windows.append(ScoredWindow(a, tuple(range(a, a + N_OUT, 2)), scored))
    return windows


def vimeo_windows() -> list[ScoredWindow]:
    return [ScoredWindow(0, VIMEO_INPUTS, tuple(range(VIMEO_FRAMES)))]


def windows_for(protocol: Protocol | str, n_frames: int) -> list[ScoredWindow]:
    """The windows of a clip of ``n_frames`` under ``protocol`` (or a dataset name's protocol)."""
    if isinstance(protocol, str):
        protocol = DATASET_SPECS[protocol].protocol
    return vid4_windows(n_frames) if protocol.whole_clip else vimeo_windows()


def lr_size(h: int, w: int) -> tuple[int, int]:
    """Size of the LR frame of an (h, w) ground truth: MATLAB imresize's ceil(size / 4)."""
    return -(-h // SCALE), -(-w // SCALE)


def make_lr(gt_u8: np.ndarray, degradation: str) -> np.ndarray:
    """The LR frame of a ground-truth frame: ``bi`` (MATLAB bicubic) or ``bd`` (blur + nearest)."""
    return DEGRADATIONS[degradation](gt_u8, SCALE)
