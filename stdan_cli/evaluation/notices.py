"""What the protocol assumed about a dataset's frames, said once per run.

Frames are accepted as the official scripts accept them (``cv2.imread`` in colour mode, MATLAB
``imresize``), which quietly decides a few things a reader should know:

- a size that is not a multiple of 4: the LR frame is ``ceil(size / 4)`` (MATLAB's rule), the
  4x output is cropped to the ground truth's size before scoring;
- a grayscale frame: its grey level is used as R, G and B;
- an alpha channel: dropped (the colours are taken as they are, not composited);
- more than 8 bits per channel: reduced to 8 bits.

A clip records what it met (:class:`ClipNotes`, which travels back from Ray workers with the
clip's scores); :func:`run_notices` turns a run's clips into one line per kind.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from stdan_cli.evaluation.images import SourceFormat


@dataclass(frozen=True)
class ClipNotes:
    """The first frame of a clip (as ``clip/file``) that met each assumption; None: none did."""

    size: str | None = None  # ground truth not a multiple of 4: 'WxH'
    grayscale: str | None = None
    alpha: str | None = None
    deep: str | None = None

    def seen(self, where: str, fmt: SourceFormat) -> ClipNotes:
        """These notes with a frame read from ``where`` in format ``fmt`` added."""
        return replace(
            self,
            grayscale=self.grayscale or (where if fmt.grayscale else None),
            alpha=self.alpha or (where if fmt.alpha else None),
            deep=self.deep or (where if fmt.bits > 8 else None),
        )


_TEXT = {
    "size": "ground-truth frames whose size is not a multiple of 4 ({n} clip(s), first: {first}): the LR frames "
            "are ceil(size / 4) (MATLAB imresize) and the 4x output is cropped to the ground truth's size",
    "grayscale": "grayscale frames ({n} clip(s), first: {first}): the grey level is used as R, G and B",
    "alpha": "frames with an alpha channel ({n} clip(s), first: {first}): the alpha channel is dropped, "
             "colours are not composited",
    "deep": "frames with more than 8 bits per channel ({n} clip(s), first: {first}): reduced to 8 bits",
}


def run_notices(notes: list[ClipNotes]) -> list[str]:
    """One line per assumption met in a run, with how many clips met it and the first frame."""
    lines = []
    for kind, text in _TEXT.items():
        found = [getattr(n, kind) for n in notes if getattr(n, kind) is not None]
        if found:
            lines.append(text.format(n=len(found), first=found[0]))
    return lines
