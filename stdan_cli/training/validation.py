"""Validation with the project's evaluation protocol: the same LR making, windows and
PSNR/SSIM on RGB and Y as ``stdan eval``, on a dataset's clips or on held-out footage."""

from __future__ import annotations

import os
from typing import Sequence

from stdan_cli.evaluation import evaluate, find_clips
from stdan_cli.evaluation.datasets import SEPTUPLET, Clip
from stdan_cli.evaluation.runner import DatasetResult, evaluate_clip
from stdan_cli.training.trainer import Validator
from stdan_cli.upscalers import Upscaler


def dataset_validator(dataset: str, root: str | os.PathLike, limit: int | None) -> Validator:
    """Scores on the first ``limit`` clips of an evaluation dataset (their presence is checked now)."""
    find_clips(dataset, root, limit)

    def validate(upscaler: Upscaler) -> dict[str, float]:
        return evaluate(dataset, root, upscaler, limit=limit).means()

    return validate


def clips_validator(clips: Sequence[Clip]) -> Validator:
    """Scores on septuplet clips (the Vimeo-90K protocol: frames 1, 3, 5, 7 in, all 7 scored)."""

    def validate(upscaler: Upscaler) -> dict[str, float]:
        results = [evaluate_clip(clip, SEPTUPLET, upscaler) for clip in clips]
        return DatasetResult("held-out footage", "bi", upscaler.name, clips=results).means()  # the evaluation's means

    return validate
