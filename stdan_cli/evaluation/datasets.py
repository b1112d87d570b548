"""Evaluation datasets: which clips, and where their frames are.

Layouts accepted (``--data-root DIR``):

- Vimeo-90K septuplets: ``DIR/sequences/<id>/im1.png .. im7.png`` (the released zip) or
  ``DIR/sequences/test/<id>/...``; optional precomputed low-resolution frames in
  ``DIR/LR_test/<id>/``, either all of ``im1..im7.png`` or only the inputs ``im1, im3, im5,
  im7.png``. ``<id>`` is like ``00001/0625``; the clips are the official fast/medium/slow test
  lists (shipped with this package, the 9 all-black clips included).
- Vid4: ``DIR/hr/<clip>/*.png`` ground truth and optional ``DIR/lr_x4/<clip>/*.png`` (one
  low-resolution frame per ground-truth frame), as in the Vid4 archive the official README
  links. Frames are ordered by the number in their file name.

A run scores all of a dataset's clips, the first ``limit`` of them, or those a clip list names
(``--list FILE``: one name a line, the official lists' format: ``00001/0625`` for Vimeo, a
folder name of ``hr/`` for Vid4), optionally cut to its first ``limit``. :class:`Selection`
says which, and whether that is the whole dataset.

Only the presence of files is checked here (cheap, before a model loads); sizes and
decodability are checked as each clip is read.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from stdan_cli.errors import DatasetError
from stdan_cli.evaluation.references import VID4_CLIPS
from stdan_cli.safe_files import NotRegular, read_limited


@dataclass(frozen=True)
class Protocol:
    """How a clip is run through the model and scored (:func:`stdan_cli.evaluation.protocol.windows_for`
    turns it into windows)."""

    name: str
    # False: one window per clip, a septuplet's frames 1, 3, 5, 7 in and all 7 scored (Vimeo-90K);
    # True: windows slide over the whole clip, every frame scored once (Vid4, the official test.py)
    whole_clip: bool


SEPTUPLET = Protocol("septuplet", whole_clip=False)
WHOLE_CLIP = Protocol("whole clip", whole_clip=True)


@dataclass(frozen=True)
class Dataset:
    """An evaluation dataset: where its clips come from and how they are scored."""

    name: str
    protocol: Protocol
    # The official test list shipped with stdan-cli (clips as DIR/sequences/<id>); None: the
    # clips are the folders of DIR/hr, in name order
    test_list: str | None
    # The clips the published figures are for, when not every clip of the list (None: all)
    published_clips: tuple[str, ...] | None = None


DATASET_SPECS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset("vimeo-fast", SEPTUPLET, "fast_testset.txt"),
        Dataset("vimeo-medium", SEPTUPLET, "medium_testset.txt"),
        Dataset("vimeo-slow", SEPTUPLET, "slow_testset.txt"),
        Dataset("vid4", WHOLE_CLIP, None, tuple(VID4_CLIPS)),
    )
}
DATASETS = tuple(DATASET_SPECS)


def dataset_spec(name: str) -> Dataset:
    if name not in DATASET_SPECS:
        raise DatasetError(f"unknown dataset '{name}'; use one of {', '.join(DATASETS)}")
    return DATASET_SPECS[name]


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
VIMEO_FRAMES = 7
VIMEO_INPUTS = (0, 2, 4, 6)  # im1, im3, im5, im7
MIN_VID4_FRAMES = 7  # one window: 4 inputs, 7 outputs
CLIP_LIST_LIMIT = 16 << 20  # bytes of a --list file read (the official Vimeo lists are under 100 kB)


@dataclass(frozen=True)
class Clip:
    name: str
    gt: tuple[Path, ...]  # ground-truth frames, in order
    lr: dict[int, Path] | None = None  # precomputed low-resolution frames by ground-truth index

    @property
    def has_lr(self) -> bool:
        return self.lr is not None


@dataclass(frozen=True)
class ClipList:
    """A ``--list FILE``: the clip names it gives, in its order, and the file's identity."""

    path: Path
    sha256: str
    names: tuple[str, ...]

    def to_json(self) -> dict:
        return {"path": str(self.path.resolve()), "sha256": self.sha256, "entries": len(self.names)}


@dataclass(frozen=True)
class Selection:
    """The clips a run scores, out of the dataset's (``whole``: the official list for Vimeo, the
    clip folders under ``hr/`` for Vid4), and how they were chosen."""

    dataset: str
    clips: tuple[Clip, ...]
    whole: tuple[str, ...]
    limit: int | None = None
    clip_list: ClipList | None = None

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.clips]

    @property
    def total(self) -> int:
        return len(self.whole)

    @property
    def partial(self) -> bool:
        """Not the dataset's clips (a --limit, or a --list naming a subset or other clips)."""
        return set(self.names) != set(self.whole)

    @property
    def outside(self) -> list[str]:
        """Clips scored that are not the dataset's (a --list may name any clip present)."""
        whole = set(self.whole)
        return [n for n in self.names if n not in whole]

    def how(self) -> str:
        """The options that chose the clips: '--list FILE, --limit 3', or ''."""
        how = [f"--list {self.clip_list.path}"] if self.clip_list is not None else []
        if self.limit is not None:
            how.append(f"--limit {self.limit}")
        return ", ".join(how)

    def count(self) -> str:
        """'3 of 1225' for a partial run, else '1225'."""
        return f"{len(self.clips)} of {self.total}" if self.partial else str(len(self.clips))

    def to_json(self) -> dict:
        return {
            "clips_evaluated": len(self.clips),
            "clips_in_dataset": self.total,
            "partial": self.partial,
            "limit": self.limit,
            "list": self.clip_list.to_json() if self.clip_list is not None else None,
            "clips_not_in_dataset": self.outside,
        }


def read_clip_list(path: str | Path) -> ClipList:
    """A clip list file: one clip name a line (blank lines ignored), as the official lists are.

    Names are relative paths under the dataset's folders (``00001/0625``, ``calendar``); an
    absolute name, ``..``, a backslash or a repeated name is an error naming the line."""
    path = Path(path)
    try:
        data = read_limited(path, CLIP_LIST_LIMIT, follow_links=True)  # a user's file: a link is read
        text = data.decode("utf-8")
    except NotRegular:
        raise DatasetError(f"the clip list {path} is not a regular file (a pipe, a device or a folder); "
                           "give a text file") from None
    except UnicodeDecodeError:  # before ValueError, which it is
        raise DatasetError(f"the clip list {path} is not a text file (one clip name a line)") from None
    except ValueError:
        raise DatasetError(f"the clip list {path} is larger than {CLIP_LIST_LIMIT >> 20} MiB; "
                           "it is not a clip list (one clip name a line)") from None
    except OSError as exc:
        raise DatasetError(f"cannot read the clip list {path}: {exc.strerror or exc}") from None
    names, seen = [], {}
    for number, line in enumerate(text.splitlines(), 1):
        name = line.strip()
        if not name:
            continue
        parts = name.split("/")
        if name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts) or any(c.isspace() for c in name):
            raise DatasetError(f"the clip list {path}, line {number}: '{name}' is not a clip name "
                               f"(like 00001/0625 for Vimeo, or a folder name of hr/ for Vid4)")
        if name in seen:
            raise DatasetError(f"the clip list {path}, line {number}: '{name}' is already on line {seen[name]}")
        seen[name] = number
        names.append(name)
    if not names:
        raise DatasetError(f"the clip list {path} names no clips (one clip name a line)")
    return ClipList(path, hashlib.sha256(data).hexdigest(), tuple(names))


def vimeo_ids(dataset: str) -> list[str]:
    """The official test list of ``vimeo-fast|medium|slow`` (ids like ``00001/0625``)."""
    name = DATASET_SPECS[dataset].test_list
    if name is None:
        raise DatasetError(f"{dataset} has no shipped test list: its clips are the folders of its hr/")
    text = resources.files("stdan_cli.evaluation").joinpath("lists").joinpath(name).read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


def _natural_key(path: Path) -> tuple:
    """Order frames by the numbers in their names (``im2`` before ``im10``), then by name."""
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", path.name)), path.name


def _images(folder: Path) -> tuple[Path, ...]:
    return tuple(sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
                        key=_natural_key))


def _vimeo_clip(root: Path, cid: str) -> Clip | None:
    for base in (root / "sequences" / cid, root / "sequences" / "test" / cid):
        if not base.is_dir():
            continue
        gt = tuple(base / f"im{i}.png" for i in range(1, VIMEO_FRAMES + 1))
        missing = [p for p in gt if not p.is_file()]
        if missing:
            raise DatasetError(f"clip {cid} is incomplete: {missing[0]} is missing")
        lr_dir = root / "LR_test" / cid
        lr = None
        if lr_dir.is_dir():
            lr = {i: lr_dir / f"im{i + 1}.png" for i in range(VIMEO_FRAMES) if (lr_dir / f"im{i + 1}.png").is_file()}
            missing = [lr_dir / f"im{i + 1}.png" for i in VIMEO_INPUTS if i not in lr]
            if missing:
                raise DatasetError(f"clip {cid} is incomplete: {missing[0]} is missing "
                                   f"(LR_test needs im1, im3, im5 and im7)")
        return Clip(cid, gt, lr)
    return None


def _vimeo_clips(dataset: str, root: Path, limit: int | None, names: tuple[str, ...] | None) -> list[Clip]:
    ids = list(names if names is not None else vimeo_ids(dataset))[:limit]
    clips, missing = [], []
    for cid in ids:
        clip = _vimeo_clip(root, cid)
        (clips if clip else missing).append(clip or cid)
    if missing:
        if (root / ids[0]).is_dir() or (root / ids[0].split("/")[0]).is_dir():
            hint = f"; {root} looks like the sequences folder itself: pass its parent as --data-root"
        elif clips and names is None:
            hint = " (--limit N scores only the first N clips of the list, --list FILE those a file names)"
        else:
            hint = ""
        raise DatasetError(
            f"{len(missing)} of {len(ids)} {dataset} clips are missing under {root} (first: {missing[0]}); "
            f"expected {root}/sequences/<id>/im1..im7.png or {root}/sequences/test/<id>/{hint}"
        )
    return clips


def _vid4_folders(root: Path) -> list[Path]:
    hr = root / "hr"
    if not hr.is_dir():
        raise DatasetError(f"{root} is not a Vid4 root: no hr/<clip>/ folders (see `stdan eval --help`)")
    folders = sorted(p for p in hr.iterdir() if p.is_dir())
    if not folders:
        raise DatasetError(f"no clip folders in {hr}")
    return folders


def _vid4_clips(root: Path, limit: int | None, names: tuple[str, ...] | None) -> list[Clip]:
    folders = _vid4_folders(root)
    if names is not None:
        present = {f.name: f for f in folders}
        missing = [n for n in names if n not in present]
        if missing:
            raise DatasetError(f"{len(missing)} of {len(names)} listed clips are not folders of {root / 'hr'} "
                               f"(first: {missing[0]}; present: {', '.join(sorted(present))})")
        folders = [present[n] for n in names]
    clips = []
    for folder in folders[:limit]:
        gt = _images(folder)
        if len(gt) < MIN_VID4_FRAMES:
            raise DatasetError(f"Vid4 clip {folder.name} has {len(gt)} frames in {folder}; "
                               f"at least {MIN_VID4_FRAMES} are needed")
        lr_dir = root / "lr_x4" / folder.name
        lr = None
        if lr_dir.is_dir():
            frames = _images(lr_dir)
            if len(frames) != len(gt):
                raise DatasetError(f"Vid4 clip {folder.name}: {lr_dir} has {len(frames)} frames and "
                                   f"{folder} has {len(gt)}; they must match one to one")
            lr = dict(enumerate(frames))
        clips.append(Clip(folder.name, gt, lr))
    return clips


def select_clips(dataset: str, root: str | Path, limit: int | None = None,
                 clip_list: ClipList | str | Path | None = None) -> Selection:
    """The clips of ``dataset`` under ``root`` a run scores (all, the first ``limit``, or those
    ``clip_list`` names, cut to its first ``limit``), their files checked to exist."""
    root = Path(root)
    spec = dataset_spec(dataset)
    if limit is not None and limit < 1:
        raise DatasetError("--limit must be at least 1")
    if clip_list is not None and not isinstance(clip_list, ClipList):
        clip_list = read_clip_list(clip_list)
    if not root.is_dir():
        raise DatasetError(f"data root {root} does not exist or is not a folder")
    names = clip_list.names if clip_list is not None else None
    if spec.test_list is None:
        clips, whole = _vid4_clips(root, limit, names), tuple(f.name for f in _vid4_folders(root))
    else:
        clips, whole = _vimeo_clips(dataset, root, limit, names), tuple(vimeo_ids(dataset))
    return Selection(dataset, tuple(clips), whole, limit, clip_list)


def find_clips(dataset: str, root: str | Path, limit: int | None = None,
               clip_list: ClipList | str | Path | None = None) -> list[Clip]:
    """The clips of :func:`select_clips`, as a list."""
    return list(select_clips(dataset, root, limit, clip_list).clips)
