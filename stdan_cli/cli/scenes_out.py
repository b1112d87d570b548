"""Where the scene cuts of a run are: times for the summary, and ``--scenes-out FILE`` in the
form ``--scenes`` reads (0-based input frame numbers, one a line; ``#`` lines are comments)."""

from __future__ import annotations

from pathlib import Path

from stdan_cli.errors import OptionError, OutputError
from stdan_cli.safe_files import atomic_write


def check_scenes_out(path: Path, output: Path) -> None:
    """The user's mistakes, before any work: a folder, a missing folder, the output itself."""
    if path.is_dir():
        raise OptionError(f"--scenes-out {path} is a folder; give a file name")
    if not path.parent.is_dir():
        raise OptionError(f"--scenes-out {path}: folder {path.parent} does not exist")
    if path.resolve() == output.resolve():
        raise OptionError(f"--scenes-out {path} is OUTPUT; choose another file name")


def format_time(seconds: float) -> str:
    """[H:]M:SS.mmm, a form --start, --end and --scenes read."""
    ms = round(seconds * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    return (f"{h}:{m:02d}" if h else f"{m}") + f":{rest // 1000:02d}.{rest % 1000:03d}"


def write_scenes(path: Path, summary, times: list[float], threshold: float, scenes_file: Path | None) -> None:
    """Write the run's scene starts to ``path`` (a temporary file renamed into place); ``times``:
    the cuts' times in seconds (:func:`cut_times`)."""
    how = f"read from {scenes_file}" if scenes_file is not None else f"--scene-threshold {threshold:g}"
    lines = [f"# scene starts of {summary.input} (0-based input frame numbers; {how}); stdan upscale --scenes reads this"]
    for frame, t in zip(summary.cut_frames, times):
        lines += [f"# {format_time(t)}", str(frame)]
    try:
        atomic_write(path, ("\n".join(lines) + "\n").encode("utf-8"))
    except OSError as exc:
        raise OutputError(f"cannot write --scenes-out {path}: {exc.strerror or exc}") from None
