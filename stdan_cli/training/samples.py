"""Training pairs: septuplets of ground-truth frames -> (input frames, target frames).

As Vimeo-90K was made for the paper: the odd frames of a septuplet (1st, 3rd, 5th, 7th) are
downscaled 4x with the evaluation's degradation the recipe names (``bi``: the MATLAB-style
bicubic, rounded to uint8 as the official LR files are; ``bd``: the Gaussian blur, then every
4th pixel), all the frames are the targets. A random LQ crop of ``crop`` pixels (its
GT counterpart ``scale * crop``), then the same flips, 90-degree rotation and time reversal for
every frame of the sample (the official ``augment``: hflip, vflip and transpose, each with
probability 1/2 when enabled; reversal with probability 1/2).

Every random choice of a sample comes from a generator seeded by (seed, iteration, slot in the
global batch), and which septuplet fills a slot from a per-epoch permutation seeded by (seed,
epoch): a batch is the same whatever the number of processes or data workers, and a resumed
run draws exactly the batches the uninterrupted one would have.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol

import numpy as np
import torch

from stdan_cli.errors import DatasetError, StdanError
from stdan_cli.evaluation.images import read_rgb
from stdan_cli.evaluation.protocol import DEGRADATIONS
from stdan_cli.safe_files import NotRegular, read_limited
from stdan_cli.training.recipe import Recipe

TRAIN_LIST = "sep_trainlist.txt"
LIST_LIMIT = 64 << 20


class Septuplets(Protocol):
    """Numbered septuplets of ground-truth frames."""

    def __len__(self) -> int: ...

    def frames(self, index: int) -> np.ndarray:
        """(T, H, W, 3) uint8 RGB."""


@dataclass(frozen=True)
class VimeoSeptuplets:
    """The Vimeo-90K septuplet layout: ``ROOT/sequences/<id>/im1..im7.png`` for every id of
    ``ROOT/sep_trainlist.txt``; ``frames_per_sample`` of each (from the first)."""

    root: Path
    ids: tuple[str, ...]
    frames_per_sample: int = 7
    list_sha256: str = ""  # of the list file as read

    @classmethod
    def open(cls, root: str | os.PathLike, frames_per_sample: int = 7) -> "VimeoSeptuplets":
        root = Path(root)
        if not root.is_dir():
            raise DatasetError(f"--data-root {root} does not exist or is not a folder")
        listing = root / TRAIN_LIST
        if not listing.is_file():
            raise DatasetError(f"{root} has no {TRAIN_LIST}: pass the Vimeo-90K septuplet folder "
                               f"(the one holding sequences/ and {TRAIN_LIST})")
        try:
            data = read_limited(listing, LIST_LIMIT)
            text = data.decode("utf-8")
        except NotRegular:
            raise DatasetError(f"{listing} is not a regular file") from None
        except (OSError, ValueError) as exc:  # ValueError: too large or not UTF-8
            raise DatasetError(f"cannot read {listing}: {getattr(exc, 'strerror', None) or exc}") from None
        ids = tuple(line.strip() for line in text.splitlines() if line.strip())
        if not ids:
            raise DatasetError(f"{listing} lists no septuplets")
        missing = [i for i in ids if not (root / "sequences" / i).is_dir()]
        if missing:
            raise DatasetError(f"{len(missing)} of the {len(ids)} septuplets of {listing} are missing under "
                               f"{root / 'sequences'} (first: {missing[0]})")
        if frames_per_sample > 7:
            raise DatasetError(f"Vimeo-90K septuplets have 7 frames; the recipe asks for {frames_per_sample}")
        return cls(root, ids, frames_per_sample, hashlib.sha256(data).hexdigest())

    def describe(self) -> dict:
        """What run.json records of the data: where, which list, its sha256 and length."""
        return {"data_root": str(self.root.resolve()), "list": TRAIN_LIST, "list_sha256": self.list_sha256,
                "samples": len(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def frames(self, index: int) -> np.ndarray:
        folder = self.root / "sequences" / self.ids[index]
        frames = [read_rgb(folder / f"im{k}.png") for k in range(1, self.frames_per_sample + 1)]
        if any(f.shape != frames[0].shape for f in frames):
            raise DatasetError(f"septuplet {self.ids[index]}: its frames differ in size")
        return np.stack(frames)


@dataclass(frozen=True)
class ArraySeptuplets:
    """Septuplets saved as ``.npy`` files, (T, H, W, 3) uint8 each (fine-tuning footage)."""

    files: tuple[Path, ...]

    def __len__(self) -> int:
        return len(self.files)

    def frames(self, index: int) -> np.ndarray:
        return np.load(self.files[index], mmap_mode="r")


def make_pair(gt: np.ndarray, recipe: Recipe, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One training pair from the first T = ``recipe.frames`` frames of (>= T, H, W, 3) uint8
    ground truth: (T//2+1, 3, c, c) input and (T, 3, s c, s c) target, float32 in [0, 1] (see
    the module's docstring)."""
    s, c, t = recipe.model.scale, recipe.crop, recipe.frames
    if gt.shape[0] < t:
        raise DatasetError(f"a sample of {gt.shape[0]} frames is too short for a recipe of {t} frames")
    gt = gt[:t]
    h, w = gt.shape[1:3]
    h, w = h - h % s, w - w % s  # LR pixels cover whole GT blocks
    if h // s < c or w // s < c:
        raise DatasetError(f"frames of {w}x{h} are too small for --crop {c}: the input crop needs "
                           f"frames of at least {s * c}x{s * c}")
    gt = gt[:, :h, :w]
    lq = np.stack([DEGRADATIONS[recipe.degradation](np.ascontiguousarray(gt[i]), s) for i in range(0, t, 2)])
    y, x = int(rng.integers(0, h // s - c + 1)), int(rng.integers(0, w // s - c + 1))
    lq = lq[:, y : y + c, x : x + c]
    gt = gt[:, s * y : s * (y + c), s * x : s * (x + c)]
    hflip, vflip, rot = (recipe.use_flip and rng.random() < 0.5, recipe.use_rot and rng.random() < 0.5,
                         recipe.use_rot and rng.random() < 0.5)
    reverse = recipe.random_reverse and rng.random() < 0.5

    def augment(a: np.ndarray) -> np.ndarray:  # (T, H, W, 3)
        if hflip:
            a = a[:, :, ::-1]
        if vflip:
            a = a[:, ::-1]
        if rot:
            a = a.transpose(0, 2, 1, 3)
        if reverse:
            a = a[::-1]
        # contiguous (T, 3, H, W): a batch's memory layout decides how CPU kernels sum, and the
        # data workers' collation makes it contiguous whatever it gets, so results never depend on --workers
        return torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float().div_(255).contiguous()

    return augment(lq), augment(gt)


def check_sample(source: Septuplets, recipe: Recipe) -> None:
    """A DatasetError now if the first septuplet cannot make a training pair (too short, too small)."""
    if not len(source):
        raise DatasetError("no training septuplets")
    make_pair(np.asarray(source.frames(0)), recipe, np.random.default_rng(0))


Slot = tuple[int, int, int]  # (septuplet index, iteration, slot in the global batch)


@dataclass(frozen=True)
class SampleFailure:
    """A sample that could not be made (a frame that cannot be read, a crop too large), carried
    to the training loop as data: an exception raised in a data worker would reach it as text
    (PyTorch re-raises it with the worker's traceback as its message)."""

    error: type  # a StdanError class
    message: str

    def raise_error(self):
        raise self.error(self.message)


class TrainingPairs(torch.utils.data.Dataset):
    """Map-style dataset over :data:`Slot` keys (made by :class:`GlobalBatches`); a sample that
    cannot be made is a :class:`SampleFailure`."""

    def __init__(self, source: Septuplets, recipe: Recipe):
        self.source, self.recipe = source, recipe

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, key: Slot) -> "tuple[torch.Tensor, torch.Tensor] | SampleFailure":
        index, iteration, slot = key
        rng = np.random.default_rng([self.recipe.seed, iteration, slot])
        try:
            return make_pair(self.source.frames(index), self.recipe, rng)
        except StdanError as exc:
            return SampleFailure(type(exc), str(exc))


def collate(items: list) -> "tuple[torch.Tensor, torch.Tensor] | SampleFailure":
    """A batch of pairs, or the first :class:`SampleFailure` among them."""
    failure = next((item for item in items if isinstance(item, SampleFailure)), None)
    return failure if failure is not None else torch.utils.data.default_collate(items)


class GlobalBatches(torch.utils.data.Sampler):
    """This process's share of every global batch for iterations ``start + 1 .. stop``: slots
    ``rank * b .. (rank + 1) * b - 1`` of each, ``b = batch_size / world``. Slot k of
    iteration i is position ``(i - 1) * batch_size + k`` of an endless sequence of epochs, each
    a permutation of the septuplets seeded by (seed, epoch)."""

    def __init__(self, n: int, batch_size: int, seed: int, start: int, stop: int, rank: int = 0, world: int = 1):
        if batch_size % world:
            raise ValueError(f"batch size {batch_size} is not divisible by {world} processes")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.start, self.stop, self.rank, self.world = start, stop, rank, world
        self._epoch, self._order = -1, np.arange(0)

    def _index(self, position: int) -> int:
        epoch, k = divmod(position, self.n)
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._order = epoch, torch.randperm(self.n, generator=gen).numpy()
        return int(self._order[k])

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[list[Slot]]:
        share = self.batch_size // self.world
        for iteration in range(self.start + 1, self.stop + 1):
            slots = range(self.rank * share, (self.rank + 1) * share)
            yield [(self._index((iteration - 1) * self.batch_size + k), iteration, k) for k in slots]


def loader(source: Septuplets, recipe: Recipe, start: int, rank: int = 0, world: int = 1, workers: int = 0,
           pin_memory: bool = False) -> torch.utils.data.DataLoader:
    """Batches for iterations ``start + 1 .. recipe.iterations``, read in ``workers`` processes."""
    sampler = GlobalBatches(len(source), recipe.batch_size, recipe.seed, start, recipe.iterations, rank, world)
    return torch.utils.data.DataLoader(TrainingPairs(source, recipe), batch_sampler=sampler, num_workers=workers,
                                       collate_fn=collate, pin_memory=pin_memory, persistent_workers=False,
                                       prefetch_factor=2 if workers else None)
