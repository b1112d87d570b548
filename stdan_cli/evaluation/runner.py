"""Scoring a model on a dataset with the paper's protocol."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from stdan_cli.evaluation.datasets import Clip, DatasetError, find_clips, scoring_windows
from stdan_cli.evaluation.images import read_rgb, write_png
from stdan_cli.evaluation.metrics import frame_scores, to_uint8
from stdan_cli.evaluation.resize import bicubic_down, blur_down
from stdan_cli.runtime import Upscaler

METRICS = ("psnr", "ssim", "psnr_y", "ssim_y")
DEGRADATIONS = {"bi": bicubic_down, "bd": blur_down}
SCALE = 4


@dataclass
class ClipResult:
    name: str
    frames: list[dict]  # {"index", "file", "psnr", "ssim", "psnr_y", "ssim_y"}
    seconds: float

    def mean(self, metric: str) -> float:
        return float(np.mean([f[metric] for f in self.frames]))

    @property
    def finite(self) -> bool:
        return all(math.isfinite(self.mean(m)) for m in METRICS)


@dataclass
class DatasetResult:
    dataset: str
    degradation: str
    model: str
    clips: list[ClipResult] = field(default_factory=list)

    @property
    def scored(self) -> list[ClipResult]:
        """Clips in the means: those with a finite PSNR (all-black clips reproduced exactly are not)."""
        return [c for c in self.clips if c.finite]

    @property
    def excluded(self) -> int:
        return len(self.clips) - len(self.scored)

    def mean(self, metric: str) -> float:
        scored = self.scored
        return float(np.mean([c.mean(metric) for c in scored])) if scored else math.nan

    @property
    def seconds_per_clip(self) -> float:
        return float(np.mean([c.seconds for c in self.clips])) if self.clips else math.nan

    def to_json(self) -> dict:
        return {
            "dataset": self.dataset,
            "degradation": self.degradation,
            "model": self.model,
            "means": {m: self.mean(m) for m in METRICS},
            "clips_scored": len(self.scored),
            "clips_excluded_infinite_psnr": self.excluded,
            "seconds_per_clip": self.seconds_per_clip,
            "clips": [
                {"name": c.name, "seconds": c.seconds, **{m: c.mean(m) for m in METRICS}, "frames": c.frames}
                for c in self.clips
            ],
        }


def _load_clip(clip: Clip, degradation: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    gt = [read_rgb(p) for p in clip.gt]
    if any(g.shape != gt[0].shape for g in gt):
        raise DatasetError(f"clip {clip.name}: ground-truth frames differ in size")
    if clip.lr is not None:
        lr = [read_rgb(p) for p in clip.lr]
        h, w = gt[0].shape[:2]
        if any(x.shape[:2] != (math.ceil(h / SCALE), math.ceil(w / SCALE)) for x in lr):
            raise DatasetError(
                f"clip {clip.name}: low-resolution frames are {lr[0].shape[1]}x{lr[0].shape[0]}, "
                f"expected {math.ceil(w / SCALE)}x{math.ceil(h / SCALE)} for {w}x{h} ground truth"
            )
    else:
        lr = [DEGRADATIONS[degradation](g, SCALE) for g in gt]
    return gt, lr


def evaluate_clip(clip: Clip, upscaler: Upscaler, degradation: str = "bi", save_dir: Path | None = None) -> ClipResult:
    started = time.perf_counter()
    gt, lr = _load_clip(clip, degradation)
    h, w = gt[0].shape[:2]
    frames = []
    for start, scored, inputs in scoring_windows(len(gt)):
        x = torch.stack([torch.from_numpy(lr[i]).permute(2, 0, 1).float() / 255 for i in inputs]).unsqueeze(0)
        out = upscaler(x)[0]  # (7, 3, 4h, 4w), zero-padded to multiples of 8 inside and cropped
        for i in scored:
            saved = to_uint8(out[i - start, :, :h, :w])
            frames.append({"index": i, "file": clip.gt[i].name, **frame_scores(saved, gt[i])})
            if save_dir is not None:
                write_png(save_dir / clip.name / clip.gt[i].name, saved)
    return ClipResult(clip.name, frames, time.perf_counter() - started)


def evaluate(
    dataset: str,
    data_root: str | Path,
    upscaler: Upscaler,
    degradation: str = "bi",
    limit: int | None = None,
    save_images: str | Path | None = None,
    progress: Callable[[int, int, ClipResult], None] | None = None,
) -> DatasetResult:
    """Score ``upscaler`` on ``dataset``: per frame, per clip (mean of frames), per dataset
    (mean of clips with a finite PSNR)."""
    if degradation not in DEGRADATIONS:
        raise DatasetError(f"unknown degradation '{degradation}'; use bi or bd")
    clips = find_clips(dataset, data_root, limit)
    result = DatasetResult(dataset, degradation, upscaler.name)
    for k, clip in enumerate(clips):
        result.clips.append(evaluate_clip(clip, upscaler, degradation, Path(save_images) if save_images else None))
        if progress:
            progress(k + 1, len(clips), result.clips[-1])
    return result


def write_json(result: DatasetResult, path: str | Path) -> None:
    def clean(v):
        return None if isinstance(v, float) and not math.isfinite(v) else v

    def walk(o):
        if isinstance(o, dict):
            return {k: walk(v) for k, v in o.items()}
        if isinstance(o, list):
            return [walk(v) for v in o]
        return clean(o)

    Path(path).write_text(json.dumps(walk(result.to_json()), indent=1))
