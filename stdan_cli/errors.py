"""Every error a user can cause or meet, in one place (and how to recognise running out of memory).

The CLI prints a :class:`StdanError` as one line (``error: <message>``) and exits with its
``exit_code``; :func:`stdan_cli.cli.main.error_line` is the one place that words them, and it
also turns out-of-memory and FFmpeg write errors into one line.
"""


import sys


def is_out_of_memory(exc: BaseException) -> bool:
    """Python's MemoryError, a GPU's ``torch.OutOfMemoryError``, or PyTorch's CPU allocator
    failing (a plain RuntimeError)."""
    if isinstance(exc, MemoryError):
        return True
    torch = sys.modules.get("torch")  # only loaded once a model ran; importing it here would slow --help
    if torch is not None and isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)


class StdanError(Exception):
    """Base class: the message is complete, one line, and says what to do."""

    exit_code = 1


class OptionError(StdanError):
    """An option value that cannot be used (out of range, unknown name, bad combination)."""

    exit_code = 2


class InputError(StdanError):
    """The input video cannot be used (missing, not media, no video stream)."""


class OutputError(StdanError):
    """The output cannot be written (exists, unwritable, codec or pixel format unusable)."""


class CheckpointError(StdanError):
    """A weights file that cannot be used (unreadable, unsafe, or not an STDAN checkpoint)."""


class WeightsNotFound(StdanError):
    """No checkpoint is available for the requested name/path."""


class RegistryError(StdanError):
    """The registry of known checkpoints is missing or malformed."""


class DownloadError(StdanError):
    """A source could not deliver the file (network, HTTP status, web page instead of the file)."""


class DownloadInterrupted(DownloadError):
    """The transfer stopped before the end; the ``.part`` file holds what arrived and can be resumed."""


class DatasetError(StdanError):
    """An evaluation data root does not hold the dataset as expected."""


class ImageError(StdanError):
    """A frame of a dataset cannot be read, or an output frame cannot be written."""


class SceneFileError(StdanError):
    """A --scenes file that cannot be read."""


class RayError(StdanError):
    """Ray is missing, the cluster cannot be reached, or its workers cannot do the work."""


class TrainingDiverged(StdanError):
    """The training loss stopped being a finite number (the run's numbers, not the user's options)."""


class JobMismatch(StdanError):
    """A work folder that belongs to another job (input, options or weights differ, or damaged)."""


class JobInterrupted(StdanError, KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a job; the message says what was kept. Still a
    KeyboardInterrupt for callers of the Python API."""

    exit_code = 130


class WorkFolderError(JobMismatch):
    """A work folder this run may not use: not ours, a link, or damaged (the message says what to do)."""
