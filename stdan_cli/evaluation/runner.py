"""Scoring a model on a dataset with the paper's protocol, and the results' JSON form.

Every scored frame is marked as an input-time frame (the model's output at the time of one of
the LR frames it was given) or an interpolated one (between two inputs), since space-time
papers report the two apart; means are given over all frames and over each kind.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from stdan_cli.errors import DatasetError
from stdan_cli.evaluation.datasets import DATASET_SPECS, Clip, ClipList, Protocol, Selection, select_clips
from stdan_cli.evaluation.images import read_image
from stdan_cli.evaluation.metrics import frame_scores, to_uint8
from stdan_cli.evaluation.notices import ClipNotes, run_notices
from stdan_cli.evaluation.protocol import DEGRADATIONS, SCALE, lr_size, make_lr, windows_for
from stdan_cli.evaluation.provenance import (
    SCHEMA_VERSION,
    RunInfo,
    WeightsIdentity,
    collect_run_info,
    identify_weights,
    utc_now,
)
from stdan_cli.evaluation.references import references_for
from stdan_cli.evaluation.saved_images import ImageFolder, open_image_folder
from stdan_cli.safe_files import write_output
from stdan_cli.upscalers import Upscaler

METRICS = ("psnr", "ssim", "psnr_y", "ssim_y")
# Which frames a mean is over: all, those at an input frame's time, those in between.
FRAME_SETS = {"all": lambda f: True, "input": lambda f: f["input"], "interpolated": lambda f: not f["input"]}


@dataclass
class ClipResult:
    name: str
    # {"index", "file", "input", "psnr", "ssim", "psnr_y", "ssim_y"}, in frame order; "input" is
    # True for a frame at an input frame's time, False for an interpolated one
    frames: list[dict]
    seconds: float  # wall time for the clip: reading, degrading, model, scoring, saving
    model_seconds: float  # of which in the model
    lr_source: str  # "precomputed", or the degradation that made the LR frames ("bi"/"bd")
    notes: ClipNotes = field(default_factory=ClipNotes)  # what the protocol assumed about its frames

    def mean(self, metric: str, frames: str = "all") -> float:
        """Mean of ``metric`` over the clip's frames of ``frames`` (a key of FRAME_SETS); NaN if none."""
        values = [f[metric] for f in self.frames if FRAME_SETS[frames](f)]
        return float(np.mean(values)) if values else math.nan

    @property
    def finite(self) -> bool:
        """False when a frame is reproduced exactly (infinite PSNR): such a clip's mean is infinite."""
        return all(math.isfinite(self.mean(m)) for m in METRICS)


@dataclass
class DatasetResult:
    dataset: str
    degradation: str
    model: str
    precision: str = "fp32"
    device: str = "cpu"
    clips: list[ClipResult] = field(default_factory=list)
    selection: Selection | None = None  # which clips, out of how many (None: not recorded)
    run: RunInfo | None = None  # weights, versions, date, command (None: not recorded)

    @property
    def scored(self) -> list[ClipResult]:
        """Clips in the means: those with finite scores (all-black clips reproduced exactly are not)."""
        return [c for c in self.clips if c.finite]

    @property
    def excluded(self) -> list[str]:
        """Names of the clips left out of the means (infinite PSNR)."""
        return [c.name for c in self.clips if not c.finite]

    def mean(self, metric: str, frames: str = "all") -> float:
        """Mean over the clips in the means of each clip's mean over ``frames`` (all, input, interpolated)."""
        scored = self.scored
        return float(np.mean([c.mean(metric, frames) for c in scored])) if scored else math.nan

    def means(self, frames: str = "all") -> dict[str, float]:
        return {m: self.mean(m, frames) for m in METRICS}

    @property
    def comparable(self) -> bool:
        """Whether the published figures are for the same clips: the whole dataset (for Vid4,
        its four clips), not a --limit or --list subset."""
        if self.selection is None or self.selection.partial:
            return False
        spec = DATASET_SPECS.get(self.dataset)
        published = spec.published_clips if spec is not None else None
        return published is None or {c.name for c in self.clips} == set(published)

    @property
    def notices(self) -> list[str]:
        """What the protocol assumed about the frames, one line per kind."""
        return run_notices([c.notes for c in self.clips])

    @property
    def seconds_per_clip(self) -> float:
        return float(np.mean([c.seconds for c in self.clips])) if self.clips else math.nan

    @property
    def model_seconds_per_clip(self) -> float:
        return float(np.mean([c.model_seconds for c in self.clips])) if self.clips else math.nan

    @property
    def lr_sources(self) -> dict[str, int]:
        return dict(Counter(c.lr_source for c in self.clips))

    @property
    def references(self) -> list:
        """Published figures comparable with this run (none for BD or generated-LR Vid4 runs)."""
        return references_for(self.dataset, self.degradation)

    def to_json(self) -> dict:
        comparable = self.comparable
        selection = self.selection.to_json() if self.selection is not None else {
            "clips_evaluated": len(self.clips), "clips_in_dataset": None, "partial": None}
        return {
            "schema_version": SCHEMA_VERSION,
            "dataset": self.dataset,
            "degradation": self.degradation,
            "lr_sources": self.lr_sources,
            "model": self.model,
            "precision": self.precision,
            "device": self.device,
            "weights": self.run.weights.to_json() if self.run is not None and self.run.weights else None,
            "run": self.run.to_json() if self.run is not None else None,
            **selection,
            "means": self.means(),
            "means_input_frames": self.means("input"),
            "means_interpolated_frames": self.means("interpolated"),
            "clips_scored": len(self.scored),
            "clips_excluded_infinite_psnr": self.excluded,
            "seconds_per_clip": self.seconds_per_clip,
            "model_seconds_per_clip": self.model_seconds_per_clip,
            "references_comparable": comparable,
            "references": [{**r.to_json(), "comparable": comparable} for r in self.references],
            "notices": self.notices,
            "clips": [
                {
                    "name": c.name,
                    "in_means": c.finite,
                    "lr_source": c.lr_source,
                    "seconds": c.seconds,
                    "model_seconds": c.model_seconds,
                    **{m: c.mean(m) for m in METRICS},
                    "means_input_frames": {m: c.mean(m, "input") for m in METRICS},
                    "means_interpolated_frames": {m: c.mean(m, "interpolated") for m in METRICS},
                    "frames": c.frames,
                }
                for c in self.clips
            ],
        }


class _LowRes:
    """LR frames of a clip on demand: the precomputed files (BI runs) or made from ground truth."""

    def __init__(self, clip: Clip, gt: list[np.ndarray], degradation: str, notes: ClipNotes):
        self.clip, self.gt, self.degradation, self.notes = clip, gt, degradation, notes
        self.source = "precomputed" if clip.has_lr and degradation == "bi" else degradation
        self.size = lr_size(*gt[0].shape[:2])
        self._frames: dict[int, np.ndarray] = {}

    def __getitem__(self, i: int) -> np.ndarray:
        if i not in self._frames:
            if self.source == "precomputed":
                path = self.clip.lr[i]
                x, fmt = read_image(path)
                self.notes = self.notes.seen(f"{self.clip.name}/{path.name}", fmt)
                if x.shape[:2] != self.size:
                    h, w = self.gt[0].shape[:2]
                    raise DatasetError(
                        f"clip {self.clip.name}: {path} is {x.shape[1]}x{x.shape[0]}; a {w}x{h} ground truth "
                        f"needs {self.size[1]}x{self.size[0]} low-resolution frames"
                    )
                self._frames[i] = x
            else:
                self._frames[i] = make_lr(self.gt[i], self.degradation)
        return self._frames[i]


def _read_ground_truth(clip: Clip) -> tuple[list[np.ndarray], ClipNotes]:
    gt, notes = [], ClipNotes()
    for p in clip.gt:
        g, fmt = read_image(p)
        notes = notes.seen(f"{clip.name}/{p.name}", fmt)
        gt.append(g)
    for p, g in zip(clip.gt, gt):
        if g.shape != gt[0].shape:
            raise DatasetError(f"clip {clip.name}: {p} is {g.shape[1]}x{g.shape[0]} but "
                               f"{clip.gt[0].name} is {gt[0].shape[1]}x{gt[0].shape[0]}; frames of a clip must match")
    h, w = gt[0].shape[:2]
    if h % SCALE or w % SCALE:
        notes = ClipNotes(f"{clip.name} ({w}x{h})", notes.grayscale, notes.alpha, notes.deep)
    return gt, notes


def evaluate_clip(
    clip: Clip, protocol: Protocol | str, upscaler: Upscaler, degradation: str = "bi", save: ImageFolder | None = None,
    frame_progress: Callable[[int], None] | None = None,
) -> ClipResult:
    """Score one clip: per frame PSNR/SSIM on RGB and Y of the saved (uint8) output, and
    whether the frame is at an input's time (with ``save``, each output frame is written there
    as ``<clip>/<frame name>.png``). ``protocol``: how the clip is cut into windows (a
    :class:`Protocol`, or the name of the dataset whose protocol it is). ``frame_progress(n)``
    is told of each window's ``n`` scored frames."""
    started = time.perf_counter()
    gt, notes = _read_ground_truth(clip)
    lr = _LowRes(clip, gt, degradation, notes)
    h, w = gt[0].shape[:2]
    frames, model_seconds = [], 0.0
    for win in windows_for(protocol, len(gt)):
        x = torch.stack([torch.from_numpy(lr[i]).permute(2, 0, 1) for i in win.inputs]).unsqueeze(0).float() / 255
        t = time.perf_counter()
        out = upscaler(x, skip_outputs=win.skip)[0].cpu()  # outputs win.skip.. of the window, cropped to 4x the LR size
        model_seconds += time.perf_counter() - t
        for i in win.scored:
            saved = to_uint8(out[i - win.first - win.skip, :, :h, :w])
            frames.append({"index": i, "file": clip.gt[i].name, "input": i in win.inputs, **frame_scores(saved, gt[i])})
            if save is not None:
                save.save(clip.name, clip.gt[i].stem, saved)
        if frame_progress:
            frame_progress(len(win.scored))
    return ClipResult(clip.name, frames, time.perf_counter() - started, model_seconds, lr.source, lr.notes)


def evaluate(
    dataset: str,
    data_root: str | Path,
    upscaler: Upscaler,
    degradation: str = "bi",
    limit: int | None = None,
    save_images: str | Path | None = None,
    progress: Callable[[int, int, ClipResult], None] | None = None,
    clip_list: ClipList | str | Path | None = None,
    weights: str | Path | WeightsIdentity | None = None,
    frame_progress: Callable[[int], None] | None = None,
    overwrite: bool = False,
) -> DatasetResult:
    """Score ``upscaler`` on ``dataset`` under ``data_root``: per frame, per clip (mean of its
    frames), per dataset (mean of the clips with finite scores; the others are listed in
    ``DatasetResult.excluded``). ``save_images``: a folder for the output frames, new, empty or
    one an earlier run filled (its frames are replaced only with ``overwrite``), never inside
    the data (:mod:`stdan_cli.evaluation.saved_images`). ``degradation`` ``bi`` uses precomputed LR frames when the root
    has them; ``bd`` always makes LR frames from the ground truth (the precomputed ones are BI).

    The clips: all of the dataset, those ``clip_list`` (a ``--list`` file) names, and of those
    the first ``limit``. ``weights``: the checkpoint the upscaler was built from (as ``--weights``
    takes it, or its :class:`WeightsIdentity`), recorded with its sha256 (None: none, or not recorded). ``progress(done, total, clip)`` is called
    after each clip, ``frame_progress(n)`` after each window's ``n`` scored frames."""
    if degradation not in DEGRADATIONS:
        raise DatasetError(f"unknown degradation '{degradation}'; use bi or bd")
    selection = select_clips(dataset, data_root, limit, clip_list)
    identity = weights if isinstance(weights, WeightsIdentity) or weights is None else identify_weights(weights)
    started = utc_now()
    result = DatasetResult(dataset, degradation, upscaler.name, upscaler.precision, str(upscaler.device),
                           selection=selection)
    save = open_image_folder(save_images, data_root, selection, overwrite) if save_images is not None else None
    for k, clip in enumerate(selection.clips):
        result.clips.append(evaluate_clip(clip, dataset, upscaler, degradation, save, frame_progress))
        if progress:
            progress(k + 1, len(selection.clips), result.clips[-1])
    result.run = collect_run_info(upscaler.device, upscaler.precision, identity, started)
    return result


def _finite_or_none(o):
    if isinstance(o, dict):
        return {k: _finite_or_none(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_finite_or_none(v) for v in o]
    return None if isinstance(o, float) and not math.isfinite(o) else o


def write_json(result: DatasetResult, path: str | Path, overwrite: bool = False) -> None:
    """Every per-clip and per-frame score as JSON; an infinite PSNR (identical frames) is null.
    Written as :func:`stdan_cli.safe_files.write_output` writes (the caller claimed ``path``
    before the run with :func:`stdan_cli.safe_files.claim_output`)."""
    text = json.dumps(_finite_or_none(result.to_json()), indent=1)
    write_output(Path(path), text.encode("utf-8"), overwrite, what="--json")
