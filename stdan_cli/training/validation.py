"""Validation with the project's evaluation protocol: the same LR making, windows and
PSNR/SSIM on RGB and Y as ``stdan eval``, on a dataset's clips or on held-out footage."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from stdan_cli.evaluation import METRICS, evaluate, find_clips
from stdan_cli.evaluation.datasets import Clip
from stdan_cli.evaluation.runner import evaluate_clip
from stdan_cli.training.trainer import Validator
from stdan_cli.upscalers import Upscaler


def _means(results) -> dict[str, float]:
    finite = [r for r in results if r.finite]
    return {m: float(np.mean([r.mean(m) for r in finite])) if finite else float("nan") for m in METRICS}


def dataset_validator(dataset: str, root: str | os.PathLike, limit: int | None) -> Validator:
    """Scores on the first ``limit`` clips of an evaluation dataset (their presence is checked now)."""
    find_clips(dataset, root, limit)

    def validate(upscaler: Upscaler) -> dict[str, float]:
        result = evaluate(dataset, root, upscaler, limit=limit)
        return {m: result.mean(m) for m in METRICS}

    return validate


def clips_validator(clips: Sequence[Clip]) -> Validator:
    """Scores on septuplet clips (the Vimeo-90K protocol: frames 1, 3, 5, 7 in, all 7 scored)."""

    def validate(upscaler: Upscaler) -> dict[str, float]:
        return _means([evaluate_clip(clip, "vimeo-fast", upscaler) for clip in clips])

    return validate
