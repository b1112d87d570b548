"""A user's clips as training data, made the way Vimeo-90K was: runs of 7 consecutive frames
of one scene (the scene cuts of the job's detector are never inside one), a few held out.

Each video is decoded once, in order; every frame goes through the cut detector the upscale
job uses (:class:`stdan_cli.pipeline.scenes.CutDetector`), and a septuplet is cut from the
frames of the current scene as soon as the detector has settled all of its frames. Septuplets
do not overlap. Frames are cropped to a multiple of 4 (the LR pixels cover whole blocks) and
kept as 8-bit RGB, as PNG septuplets are.

Held-out septuplets are spread evenly over the list; their neighbours in the same scene are
left out of training too, so the held-out score is not measured on frames next to frames the
model was trained on. The septuplets are written under ``DIR/footage/``: training ones as
``.npy`` (read by the data workers without decoding), held-out ones as PNG septuplets that
the evaluation reads.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from stdan_cli.errors import DatasetError, InputError
from stdan_cli.evaluation.datasets import Clip
from stdan_cli.evaluation.images import write_png
from stdan_cli.pipeline.scenes import DEFAULT_THRESHOLD, cut_source
from stdan_cli.safe_files import kind_of, read_limited, remove_file
from stdan_cli.video.decode import VideoReader

FOOTAGE = "footage"
INDEX = "index.json"
INDEX_LIMIT = 64 << 20


@dataclass(frozen=True)
class Septuplet:
    video: int  # index of the video among the inputs
    first: int  # index of its first frame in the video
    frames: np.ndarray  # (T, H, W, 3) uint8


def video_septuplets(path: str | os.PathLike, video: int, frames: int = 7, threshold: float = DEFAULT_THRESHOLD,
                     multiple: int = 4, cuts: set[int] | None = None) -> Iterator[Septuplet]:
    """The non-overlapping runs of ``frames`` consecutive frames of one scene of a video, in
    order; the cuts found are added to ``cuts`` (the indices of the frames that start a scene)."""
    detector = cut_source(threshold)
    pending: list[tuple[int, np.ndarray]] = []
    cuts = set() if cuts is None else cuts

    def settle(decided: int):
        nonlocal pending
        while pending:
            window = pending[:frames]
            cut = next((i for i, _ in window[1:] if i in cuts), None)
            if cut is not None:  # a new scene starts inside: drop what precedes it
                pending = [p for p in pending if p[0] >= cut]
                continue
            if len(window) == frames and window[-1][0] <= decided:
                yield Septuplet(video, window[0][0], np.stack([f for _, f in window]))
                pending = pending[frames:]
                continue
            break

    with VideoReader(path) as reader:
        info = reader.peek()
        h, w = info.height - info.height % multiple, info.width - info.width % multiple
        if h < multiple or w < multiple:
            raise InputError(f"{reader.source}: frames of {info.width}x{info.height} are too small to train on")
        index = -1
        for frame in reader.frames():
            index += 1
            seconds = float(Fraction(frame.pts) * info.time_base)
            cuts.update(detector.push(index, seconds, frame.rgb))
            rgb = (frame.rgb[:, :h, :w].clamp(0, 1) * 255).round().to(torch.uint8)
            pending.append((index, rgb.permute(1, 2, 0).numpy()))
            yield from settle(index - detector.latency)
        cuts.update(detector.finish())
        yield from settle(index)


def held_out(n: int, count: int) -> list[int]:
    """``count`` of ``n`` positions spread evenly (the middle of ``count`` equal parts)."""
    return sorted({min(n - 1, int((k + 0.5) * n / count)) for k in range(count)}) if count else []


@dataclass(frozen=True)
class Footage:
    """The septuplets made from the videos: files for training, clips for validation."""

    train: tuple[Path, ...]
    held: tuple[Clip, ...]
    cuts: int  # scene cuts found in the videos
    videos: tuple[str, ...]


def _signature(videos: Sequence[str], frames: int, threshold: float, holdout: int) -> dict:
    files = []
    for v in videos:
        p = Path(v)
        st = p.stat()
        files.append({"path": str(p.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    return {"videos": files, "frames": frames, "threshold": threshold, "holdout": holdout}


def _index(folder: Path) -> dict | None:
    """The index of a set this tool made in ``folder`` (None: none, or not one it wrote)."""
    try:
        index = json.loads(read_limited(folder / INDEX, INDEX_LIMIT).decode("utf-8"))
    except (OSError, ValueError):  # also NotRegular: a link or pipe is no index of ours
        return None
    names_ok = isinstance(index, dict) and all(
        isinstance(index.get(k), list) and all(isinstance(n, str) and _plain(n) for n in index[k])
        for k in ("train", "held"))
    return index if names_ok and isinstance(index.get("signature"), dict) else None


def _plain(name: str) -> bool:
    return bool(name) and "/" not in name and "\\" not in name and name not in (".", "..")


def _remove_set(folder: Path, index: dict) -> None:
    """Remove a set this tool made before: only the names its index records, after checking
    that the folder holds nothing else (a user's file there is never removed: the set is
    refused instead)."""
    frames = index["signature"].get("frames", 7)
    held = {name: {f"im{t}.png" for t in range(1, frames + 1)} for name in index["held"]}
    expected = {INDEX, "held", *index["train"]}
    foreign = [p for p in folder.iterdir() if p.name not in expected]
    if kind_of(folder / "held") not in (None, "folder"):
        foreign.append(folder / "held")
    elif (folder / "held").is_dir():
        for sub in (folder / "held").iterdir():
            if sub.name not in held or kind_of(sub) != "folder":
                foreign.append(sub)
            else:
                foreign += [p for p in sub.iterdir() if p.name not in held[sub.name] or kind_of(p) != "file"]
    foreign += [folder / n for n in index["train"] if kind_of(folder / n) not in (None, "file")]
    if foreign:
        raise DatasetError(f"{folder} holds files stdan finetune did not make (first: {foreign[0]}); "
                           f"move them away or choose another --out")
    for name, files in held.items():
        for f in files:
            remove_file(folder / "held" / name / f)
        _rmdir(folder / "held" / name)
    _rmdir(folder / "held")
    for name in index["train"]:
        remove_file(folder / name)
    remove_file(folder / INDEX)
    os.rmdir(folder)


def _rmdir(path: Path) -> None:
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


def _load(folder: Path, signature: dict) -> Footage | None:
    index = _index(folder)
    if index is None or index.get("signature") != signature:
        return None
    train = tuple(folder / name for name in index["train"])
    held = tuple(Clip(name, tuple(folder / "held" / name / f"im{t}.png" for t in range(1, signature["frames"] + 1)))
                 for name in index["held"])
    if not all(p.is_file() for p in train) or not all(p.is_file() for c in held for p in c.gt):
        return None
    return Footage(train, held, index["cuts"], tuple(v["path"] for v in signature["videos"]))


def existing_footage(videos: Sequence[str | os.PathLike], out: str | os.PathLike, *, frames: int = 7,
                     threshold: float = DEFAULT_THRESHOLD, holdout: int = 2) -> Footage | None:
    """The septuplets :func:`prepare_footage` made before from the same files and settings, if any."""
    return _load(Path(out) / FOOTAGE, _signature([str(v) for v in videos], frames, threshold, holdout))


def prepare_footage(videos: Sequence[str | os.PathLike], out: str | os.PathLike, *, frames: int = 7,
                    threshold: float = DEFAULT_THRESHOLD, holdout: int = 2) -> Footage:
    """The septuplets of ``videos`` under ``out/footage`` (reused when made before from the same
    files with the same settings), ``holdout`` of them held out."""
    videos = [str(v) for v in videos]
    for v in videos:
        if not Path(v).is_file():
            raise InputError(f"input {v} does not exist or is not a file")
    folder = Path(out) / FOOTAGE
    signature = _signature(videos, frames, threshold, holdout)
    found = _load(folder, signature)
    if found is not None:
        return found
    old = _index(folder) if kind_of(folder) is not None else None
    if kind_of(folder) is not None and (old is None or kind_of(folder) != "folder"):
        raise DatasetError(f"{folder} exists and was not made by stdan finetune; choose another --out")
    # Made in a new folder with a random name, then swapped in: no half-made set is ever reused.
    Path(out).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".footage.", dir=out))
    try:
        samples, cuts = [], 0
        for k, v in enumerate(videos):
            found: set[int] = set()
            firsts = []
            for s in video_septuplets(v, k, frames, threshold, cuts=found):
                firsts.append(s.first)
                np.save(work / f"v{k}-f{s.first:06d}.npy", s.frames)  # one at a time: memory holds one septuplet
            # (video, scene, first frame, name): the scene is known once every cut of the video is
            samples += [(k, sum(c <= f for c in found), f, f"v{k}-f{f:06d}") for f in firsts]
            cuts += len(found)
        if len(samples) < holdout + 1:
            raise DatasetError(f"the inputs give {len(samples)} septuplet(s) of {frames} frames within scenes; at "
                               f"least {holdout + 1} are needed ({holdout} held out): use longer clips or a smaller "
                               f"--holdout")
        held = held_out(len(samples), holdout)
        near = {(samples[i][0], samples[i][1], samples[i][2] + d * frames) for i in held for d in (-1, 1)}
        train = [i for i, s in enumerate(samples) if i not in held and s[:3] not in near]
        train = train or [i for i in range(len(samples)) if i not in held]
        for i in held:
            name = samples[i][3]
            for t, frame in enumerate(np.load(work / f"{name}.npy"), 1):
                write_png(work / "held" / name / f"im{t}.png", frame)
        for i, s in enumerate(samples):
            if i not in train:
                (work / f"{s[3]}.npy").unlink()
        (work / INDEX).write_text(json.dumps({"signature": signature, "train": [f"{samples[i][3]}.npy" for i in train],
                                              "held": [samples[i][3] for i in held], "cuts": cuts}, indent=1))
        if old is not None:
            _remove_set(folder, old)  # a set this command made before, for other inputs or settings
        os.replace(work, folder)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)  # the folder this call made (mkdtemp's random name)
        raise
    return _load(folder, signature)
