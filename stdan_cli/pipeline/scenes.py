"""Where scenes start: hard cuts found in the decoded frames, or read from a file.

Every source of cuts is fed the frames in order, as they are decoded, and answers with the
indices of frames that start a new scene (never frame 0). ``latency`` says how many later
frames a source needs before it can answer for a frame: the pipeline holds that many frames
back before it closes a scene.

Detection is PySceneDetect's ``ContentDetector`` (the mean absolute change of hue,
saturation and luma between consecutive frames, each 0-255, averaged; a cut where it reaches
the threshold, 27 by default), run on a copy of the frame at most 256 pixels wide. A candidate
is kept only when the change lasts: the frame after it must also differ from the frame
before it, and the frame before it must not itself be a one-frame departure from the
frame two before. So a one-frame flash (the frames before and after it alike) is not a cut,
while a distinct frame between two shots is a scene of its own. Fades and slow pans change
little from frame to frame and stay below the threshold. Hue and saturation mean nothing in
near-black frames (mean value below 32 of 255), where a fade through black makes them jump:
a change into or out of such a frame counts only its luma change.
"""

from __future__ import annotations

import csv
import io
import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from scenedetect import ContentDetector, FrameTimecode

from stdan_cli.errors import OptionError, SceneFileError
from stdan_cli.pipeline.options import SCENE_THRESHOLD
from stdan_cli.pipeline.timecode import parse_time

DEFAULT_THRESHOLD = SCENE_THRESHOLD  # PySceneDetect's default for ContentDetector
DETECTION_WIDTH = 256  # frames are shrunk to about this width before scoring, as PySceneDetect does
DARK = 32.0  # mean HSV value (0-255) below which a frame's hue and saturation are ignored


def detection_image(rgb: torch.Tensor) -> np.ndarray:
    """(3, H, W) float RGB in [0, 1] -> the uint8 BGR image PySceneDetect scores, shrunk by
    an integer factor (area average) to about DETECTION_WIDTH pixels wide. OpenCV does the
    work: it stays cheap beside the model, whatever PyTorch's threads are doing."""
    planes = [np.ascontiguousarray(rgb[c].numpy(), dtype=np.float32) for c in (2, 1, 0)]  # B, G, R
    h, w = planes[0].shape
    factor = w // DETECTION_WIDTH
    if factor > 1:
        size = (max(1, w // factor), max(1, h // factor))
        planes = [cv2.resize(p, size, interpolation=cv2.INTER_AREA) for p in planes]
    return cv2.convertScaleAbs(cv2.merge(planes), alpha=255.0)  # rounded, saturated to 0..255


def _is_dark(img: np.ndarray) -> bool:
    return float(img.max(axis=2).mean()) < DARK  # HSV value is the largest of B, G, R


def _differs(a: np.ndarray, b: np.ndarray, threshold: float) -> bool:
    """Whether ContentDetector scores the change from ``a`` to ``b`` at or above ``threshold``
    (luma only when either frame is near black)."""
    detector = ContentDetector(threshold=threshold, min_scene_len=0, luma_only=_is_dark(a) or _is_dark(b))
    detector.process_frame(FrameTimecode(0, fps=25.0), a)
    return bool(detector.process_frame(FrameTimecode(1, fps=25.0), b))


class CutDetector:
    """Hard cuts with a lasting change, found frame by frame (see the module's docstring)."""

    latency = 1  # a candidate at frame c is decided once frame c + 1 is seen

    def __init__(self, threshold: float = DEFAULT_THRESHOLD):
        if threshold <= 0:
            raise ValueError("the threshold of a cut detector must be positive")
        self.threshold = threshold
        # min_scene_len=0: PySceneDetect's own flash filter would keep the first cut of a
        # flash; lasting changes are checked here instead.
        self._content = ContentDetector(threshold=threshold, min_scene_len=0)
        self._images: deque[tuple[int, np.ndarray]] = deque(maxlen=4)
        self._candidates: deque[int] = deque()
        self._last = -1

    def push(self, index: int, seconds: float, rgb: torch.Tensor) -> list[int]:
        img = detection_image(rgb)
        if self._content.process_frame(FrameTimecode(index, fps=25.0), img) and index > 0:
            self._candidates.append(index)
        self._images.append((index, img))
        self._last = index
        return self._decide(final=False)

    def finish(self) -> list[int]:
        return self._decide(final=True)

    def _decide(self, final: bool) -> list[int]:
        cuts = []
        images = dict(self._images)
        while self._candidates and (final or self._candidates[0] < self._last):
            c = self._candidates.popleft()
            real = _differs(images[c - 1], images[c], self.threshold)  # the same score, dark-aware
            lasting = c + 1 not in images or _differs(images[c - 1], images[c + 1], self.threshold)
            settled = c - 2 not in images or _differs(images[c - 2], images[c], self.threshold)
            if real and lasting and settled:
                cuts.append(c)
        return cuts


class NoCuts:
    """Detection off: the whole video is one scene."""

    latency = 0

    def push(self, index: int, seconds: float, rgb: torch.Tensor) -> list[int]:
        return []

    def finish(self) -> list[int]:
        return []


@dataclass(frozen=True)
class SceneList:
    """Scene starts read from a file: frame numbers (0-based) and times (seconds from the
    first frame; a scene starts at the first frame at or after its time)."""

    frames: frozenset[int] = frozenset()
    times: tuple[float, ...] = ()


@dataclass
class ListedCuts:
    """Cuts from a :class:`SceneList`, resolved against the frames' times as they arrive."""

    scenes: SceneList
    latency: int = 0
    _times: list[float] = field(default_factory=list)
    _previous: float | None = None

    def __post_init__(self) -> None:
        self._times = sorted(self.scenes.times)

    def push(self, index: int, seconds: float, rgb: torch.Tensor) -> list[int]:
        cut = index > 0 and index in self.scenes.frames
        while self._times and self._times[0] <= seconds:
            # a time at or before the first frame is the start of the video, not a cut
            cut = cut or (self._previous is not None and self._times[0] > self._previous)
            self._times.pop(0)
        self._previous = seconds
        return [index] if cut and index > 0 else []

    def finish(self) -> list[int]:
        return []


def read_scene_list(path: str | os.PathLike) -> SceneList:
    """Read a --scenes file: one scene start a line, a 0-based frame number or a time
    (``12.5``, ``1:02.250``), or PySceneDetect's ``list-scenes`` CSV (its 1-based
    "Start Frame" column). Blank lines and lines starting with # are ignored."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SceneFileError(f"scenes file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SceneFileError(f"cannot read scenes file {path}: {exc}") from None
    if "Start Frame" in text:
        return _read_csv(path, text)
    frames, times = set(), []
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if entry.isdigit():
            frames.add(int(entry))
            continue
        if ":" in entry or "." in entry:
            try:
                times.append(parse_time(entry))
                continue
            except ValueError:
                pass
        raise SceneFileError(
            f"{path}, line {number}: '{entry}' is neither a frame number (0-based) nor a time like 12.5 or 1:02.250"
        )
    return SceneList(frozenset(frames), tuple(sorted(times)))


def _read_csv(path: Path, text: str) -> SceneList:
    rows = [r for r in csv.reader(io.StringIO(text)) if r and not r[0].startswith("Timecode List")]
    header = next((i for i, r in enumerate(rows) if "Start Frame" in r), None)
    column = rows[header].index("Start Frame")
    frames = set()
    for number, row in enumerate(rows[header + 1 :], header + 2):
        try:
            frames.add(int(row[column]) - 1)  # list-scenes numbers frames from 1
        except (IndexError, ValueError):
            raise SceneFileError(f"{path}: row {number} has no Start Frame number") from None
    return SceneList(frozenset(f for f in frames if f > 0))


def cut_source(threshold: float = DEFAULT_THRESHOLD, scenes: SceneList | None = None):
    """The source of cuts for the options: a scene list if given, else detection
    (``threshold`` 0 turns it off)."""
    if scenes is not None:
        return ListedCuts(scenes)
    if threshold == 0:
        return NoCuts()
    if threshold < 0:
        raise OptionError("--scene-threshold cannot be negative (0 turns detection off)")
    return CutDetector(threshold)
