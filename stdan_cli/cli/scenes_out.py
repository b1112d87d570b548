"""Where the scene cuts of a run are: times for the summary, and ``--scenes-out FILE`` in the
form ``--scenes`` reads (0-based input frame numbers, one a line; ``#`` lines are comments)."""

from __future__ import annotations

from pathlib import Path

from stdan_cli.errors import OptionError
from stdan_cli.safe_files import claim_output, read_file_among, write_output


def check_scenes_out(path: Path, output: Path, reads: list, overwrite: bool) -> None:
    """Before any work: ``path`` is not OUTPUT, not a file the run reads (``reads``: the input,
    the --scenes file, the weights), not a link, pipe, device or folder, and exists only with
    ``-y`` (:func:`stdan_cli.safe_files.claim_output`)."""
    if path.is_dir():
        raise OptionError(f"--scenes-out {path} is a folder; give a file name")
    if not path.parent.is_dir():
        raise OptionError(f"--scenes-out {path}: folder {path.parent} does not exist")
    if path.resolve() == output.resolve() or read_file_among(path, [output]) is not None:
        raise OptionError(f"--scenes-out {path} is OUTPUT; choose another file name")
    claim_output(path, reads, overwrite, what="--scenes-out")


def format_time(seconds: float) -> str:
    """[H:]M:SS.mmm, a form --start, --end and --scenes read."""
    ms = round(seconds * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    return (f"{h}:{m:02d}" if h else f"{m}") + f":{rest // 1000:02d}.{rest % 1000:03d}"


def write_scenes(path: Path, summary, times: list[float], threshold: float, scenes_file: Path | None,
                 overwrite: bool = False) -> None:
    """Write the run's scene starts to ``path`` (claimed by :func:`check_scenes_out`: a temporary
    file renamed into place); ``times``: the cuts' times in seconds (:func:`cut_times`)."""
    how = f"read from {scenes_file}" if scenes_file is not None else f"--scene-threshold {threshold:g}"
    lines = [f"# scene starts of {summary.input} (0-based input frame numbers; {how}); stdan upscale --scenes reads this"]
    for frame, t in zip(summary.cut_frames, times):
        lines += [f"# {format_time(t)}", str(frame)]
    write_output(path, ("\n".join(lines) + "\n").encode("utf-8"), overwrite, what="--scenes-out")
