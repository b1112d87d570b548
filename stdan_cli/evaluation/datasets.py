"""Evaluation datasets: which clips, where their frames are, and how windows cover them.

Layouts accepted (``--data-root DIR``):

- Vimeo-90K septuplets: ``DIR/sequences/<id>/im1.png .. im7.png`` (the released zip) or
  ``DIR/sequences/test/<id>/...``; optional precomputed low-resolution frames in
  ``DIR/LR_test/<id>/im1.png .. im7.png``. ``<id>`` is like ``00001/0625``; the clip lists are
  the official fast/medium/slow test lists (shipped with this package).
- Vid4: ``DIR/hr/<clip>/*.png`` ground truth and optional ``DIR/lr_x4/<clip>/*.png``
  (same file names), as in the Vid4 archive the official README links.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from stdan_cli.errors import StdanError

DATASETS = ("vimeo-fast", "vimeo-medium", "vimeo-slow", "vid4")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
OUTPUTS_PER_WINDOW = 7  # 4 inputs -> 7 outputs


class DatasetError(StdanError):
    """The data root does not hold the dataset as expected."""


@dataclass(frozen=True)
class Clip:
    name: str
    gt: tuple[Path, ...]  # ground-truth frames, in order
    lr: tuple[Path, ...] | None  # precomputed low-resolution frames (one per ground-truth frame)


def vimeo_ids(dataset: str) -> list[str]:
    name = {"vimeo-fast": "fast_testset.txt", "vimeo-medium": "medium_testset.txt", "vimeo-slow": "slow_testset.txt"}[dataset]
    text = resources.files("stdan_cli.evaluation").joinpath("lists").joinpath(name).read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


def _vimeo_clip(root: Path, cid: str) -> Clip | None:
    for base in (root / "sequences" / cid, root / "sequences" / "test" / cid):
        if base.is_dir():
            gt = tuple(base / f"im{i}.png" for i in range(1, 8))
            missing = [p for p in gt if not p.is_file()]
            if missing:
                raise DatasetError(f"clip {cid} is incomplete: {missing[0]} is missing")
            lr_dir = root / "LR_test" / cid
            lr = None
            if lr_dir.is_dir():
                lr = tuple(lr_dir / f"im{i}.png" for i in range(1, 8))
                missing = [p for p in lr if not p.is_file()]
                if missing:
                    raise DatasetError(f"clip {cid} is incomplete: {missing[0]} is missing")
            return Clip(cid, gt, lr)
    return None


def _images(folder: Path) -> tuple[Path, ...]:
    return tuple(sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))


def find_clips(dataset: str, root: str | Path, limit: int | None = None) -> list[Clip]:
    """The clips of ``dataset`` under ``root`` (the first ``limit`` of them), checked to exist."""
    root = Path(root)
    if dataset not in DATASETS:
        raise DatasetError(f"unknown dataset '{dataset}'; use one of {', '.join(DATASETS)}")
    if not root.is_dir():
        raise DatasetError(f"data root {root} does not exist")
    if dataset == "vid4":
        hr = root / "hr"
        if not hr.is_dir():
            raise DatasetError(f"{root} is not a Vid4 root: no hr/<clip>/ folders (see `stdan eval --help`)")
        clips = []
        for folder in sorted(p for p in hr.iterdir() if p.is_dir())[:limit]:
            gt = _images(folder)
            if len(gt) < OUTPUTS_PER_WINDOW:
                raise DatasetError(f"Vid4 clip {folder.name} has {len(gt)} frames; at least {OUTPUTS_PER_WINDOW} are needed")
            lr_dir = root / "lr_x4" / folder.name
            lr = None
            if lr_dir.is_dir():
                lr = _images(lr_dir)
                if [p.name for p in lr] != [p.name for p in gt]:
                    raise DatasetError(f"Vid4 clip {folder.name}: lr_x4 and hr do not hold the same frames")
            clips.append(Clip(folder.name, gt, lr))
        if not clips:
            raise DatasetError(f"no clips in {hr}")
        return clips
    ids = vimeo_ids(dataset)[:limit]
    clips, missing = [], []
    for cid in ids:
        clip = _vimeo_clip(root, cid)
        (clips if clip else missing).append(clip or cid)
    if missing:
        raise DatasetError(
            f"{len(missing)} of {len(ids)} {dataset} clips are missing under {root} (first: {missing[0]}); "
            f"expected {root}/sequences/<id>/im1..im7.png or {root}/sequences/test/<id>/ (use --limit for a partial run)"
        )
    return clips


def scoring_windows(n_frames: int, n_out: int = OUTPUTS_PER_WINDOW) -> list[tuple[int, list[int], list[int]]]:
    """(first frame, ground-truth indices scored, input indices) per window: windows of ``n_out`` frames with
    every other frame as input, advancing by ``n_out - 1`` (the shared frame is scored once, from
    the earlier window), the last window aligned to the clip's end so every frame is scored."""
    if n_frames < n_out:
        raise DatasetError(f"a clip needs at least {n_out} frames, got {n_frames}")
    starts = list(range(0, n_frames - n_out + 1, n_out - 1))
    if starts[-1] + n_out < n_frames:
        starts.append(n_frames - n_out)
    windows, scored = [], set()
    for a in starts:
        hr = [i for i in range(a, a + n_out) if i not in scored]
        scored.update(hr)
        windows.append((a, hr, list(range(a, a + n_out, 2))))
    return windows
