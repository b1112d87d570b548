"""Errors a user can cause and fix. The CLI prints them as one line and exits non-zero."""


class StdanError(Exception):
    """Base class: the message is complete, one line, and says what to do."""

    exit_code = 1


class CheckpointError(StdanError):
    """A weights file that cannot be used (unreadable, unsafe, or not an STDAN checkpoint)."""


class WeightsNotFound(StdanError):
    """No checkpoint is available for the requested name/path."""


class InputError(StdanError):
    """The input video cannot be used (missing, not media, no video stream)."""


class OutputError(StdanError):
    """The output cannot be written (exists, unwritable, codec or pixel format unusable)."""
