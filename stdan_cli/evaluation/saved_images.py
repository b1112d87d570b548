"""``eval --save-images DIR``: the folder the scored output frames are written to, and what it may be.

- DIR and the data the run reads never overlap: DIR equal to, inside, or holding the data
  root or a folder of read frames is refused (through links too: paths are resolved), so the
  ground truth is never replaced by the model's output.
- DIR is new or empty (it then gets the marker :data:`MARKER`), or carries that marker from an
  earlier run; such a folder with frames in it is refilled only with ``-y``. A folder with
  other files and no marker is refused: it is not the tool's to fill.
- Each frame is ``DIR/<clip>/<frame name>.png``: the clip's folders are made without
  following links (:func:`stdan_cli.safe_files.make_folders`), and each file is written to a
  random exclusive temporary name and renamed into place (never written through a link).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from stdan_cli.errors import OutputError
from stdan_cli.evaluation.datasets import Selection
from stdan_cli.evaluation.images import encode_png
from stdan_cli.safe_files import FolderRefused, NotRegular, claim_folder, kind_of, make_folders, write_output

MARKER = "stdan-eval-images.json"
_FIELDS = {"what": "stdan eval --save-images: scored output frames, DIR/<clip>/<frame>.png"}
OPTION = "--save-images"


@dataclass(frozen=True)
class ImageFolder:
    """A folder the run may fill with frames; ``overwrite``: frames already there may be replaced."""

    path: Path
    overwrite: bool = False

    def write(self, relative: str, data: bytes) -> Path:
        """Put the PNG bytes ``data`` at ``path/relative`` (``<clip>/<frame>.png``)."""
        parts = Path(relative)
        try:
            folder = make_folders(self.path, parts.parent)
        except NotRegular as exc:
            raise OutputError(f"{OPTION} {self.path}: {exc.filename} is a link or not a folder; "
                              "the tool does not write through links") from None
        except OSError as exc:
            raise OutputError(f"cannot write under {OPTION} {self.path}: {exc.strerror or exc}") from None
        target = folder / parts.name
        write_output(target, data, self.overwrite, what=OPTION, yes="-y/--overwrite", sync=False)  # frames: many, remade
        return target

    def save(self, clip: str, stem: str, rgb: np.ndarray) -> Path:
        return self.write(f"{clip}/{stem}.png", encode_png(rgb))


def read_folders(data_root: str | Path, selection: Selection | None) -> set[Path]:
    """The folders a run reads frames from: the data root and each clip's frame folders (resolved)."""
    folders = {Path(data_root)}
    for clip in selection.clips if selection is not None else ():
        folders.update(p.parent for p in clip.gt)
        folders.update(p.parent for p in (clip.lr or {}).values())
    return {f.resolve() for f in folders}


def _overlap(folder: Path, reads: Iterable[Path]) -> Path | None:
    mine = folder.resolve()
    for read in reads:
        if mine == read or read in mine.parents or mine in read.parents:
            return read
    return None


def check_image_folder(folder: str | Path, data_root: str | Path, selection: Selection | None,
                       overwrite: bool = False) -> Path:
    """Refuse, before any work, a ``--save-images`` folder the run may not fill (see the module)."""
    folder = Path(folder)
    read = _overlap(folder, read_folders(data_root, selection))
    if read is not None:
        raise OutputError(f"{OPTION} {folder} overlaps the data this run reads ({read}); write the frames "
                          "to a folder outside the dataset")
    kind = kind_of(folder)
    if kind is None:
        return folder
    if kind == "link":
        raise OutputError(f"{OPTION} {folder} is a symbolic link, which the tool does not follow; pass the real folder")
    if kind != "folder":
        raise OutputError(f"{OPTION} {folder} exists and is not a folder")
    names = set(os.listdir(folder))
    if names and MARKER not in names:
        raise OutputError(f"{OPTION} {folder} is not empty and was not made by stdan eval (it has no {MARKER}); "
                          "pass a new or empty folder")
    if names - {MARKER} and not overwrite:
        raise OutputError(f"{OPTION} {folder} holds frames of an earlier run; pass -y/--overwrite to replace them")
    return folder


def open_image_folder(folder: str | Path, data_root: str | Path, selection: Selection | None,
                      overwrite: bool = False) -> ImageFolder:
    """:func:`check_image_folder`, then make or mark the folder: the run may fill it."""
    folder = check_image_folder(folder, data_root, selection, overwrite)
    try:
        claim_folder(folder, MARKER, _FIELDS)
    except FolderRefused as exc:
        raise OutputError(f"{OPTION} {folder} cannot be used: {exc}") from None
    except OSError as exc:
        raise OutputError(f"cannot create {OPTION} {folder}: {exc.strerror or exc}") from None
    return ImageFolder(folder, overwrite)
