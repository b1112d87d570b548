"""Validation with the project's evaluation protocol: the same LR making, windows and
PSNR/SSIM on RGB and Y as ``stdan eval``, on a dataset's clips or on held-out footage.

A validator takes an upscaler and a folder for the outputs of the first clip (None: none
saved) and returns the means over its clips; with no clips it returns {} (the training says
so once, and goes on without validation scores).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from stdan_cli.errors import DatasetError
from stdan_cli.evaluation.datasets import (  # the layout's one reader
    SEPTUPLET,
    Clip,
    Protocol,
    _vimeo_clip,
    dataset_spec,
    select_clips,
    vimeo_ids,
)
from stdan_cli.evaluation.runner import DatasetResult, evaluate_clip
from stdan_cli.evaluation.saved_images import ImageFolder
from stdan_cli.training.trainer import Validator
from stdan_cli.upscalers import Upscaler


def dataset_clips(dataset: str, root: str | os.PathLike, limit: int | None,
                  clip_list: str | os.PathLike | None = None) -> tuple[Clip, ...]:
    """The clips a training run validates on: the first ``limit`` of ``dataset`` (or of those
    ``clip_list`` names) present under ``root``. With no list, missing clips are left out
    (none present: an empty tuple); with a list, every clip it names must be there."""
    try:
        return select_clips(dataset, root, limit, clip_list).clips
    except DatasetError as exc:
        if clip_list is not None or not Path(root).is_dir():
            raise DatasetError(_train_hint(str(exc))) from None
    if dataset_spec(dataset).test_list is None:  # clips found as folders: none present, none to score
        return ()
    found = [c for c in (_vimeo_clip(Path(root), cid) for cid in vimeo_ids(dataset)) if c is not None]
    return tuple(found[:limit] if limit else found)


def _train_hint(message: str) -> str:
    """The evaluation's message with its options named as the training's."""
    return message.replace("--limit", "--val-limit").replace("--list", "--val-list")


def dataset_validator(dataset: str, clips: Sequence[Clip], degradation: str = "bi") -> Validator:
    """Scores on ``clips`` of an evaluation dataset (see :func:`dataset_clips`)."""
    return _validator(dataset, dataset_spec(dataset).protocol, clips, degradation)


def clips_validator(clips: Sequence[Clip], degradation: str = "bi") -> Validator:
    """Scores on septuplet clips (the Vimeo-90K protocol: frames 1, 3, 5, 7 in, all 7 scored)."""
    return _validator("held-out footage", SEPTUPLET, clips, degradation)



def _validator(name: str, protocol: Protocol, clips: Sequence[Clip], degradation: str) -> Validator:
    def validate(upscaler: Upscaler, images: Path | None = None) -> dict[str, float]:
        if not clips:
            return {}
        save = ImageFolder(images, overwrite=True) if images is not None else None  # a folder of the run's own
        results = [evaluate_clip(clip, protocol, upscaler, degradation, save if k == 0 else None)
                   for k, clip in enumerate(clips)]
        return DatasetResult(name, degradation, upscaler.name, clips=results).means()  # the evaluation's means

    return validate
