"""Quieting FFmpeg and the encoder libraries that print by themselves (``-q``)."""

from __future__ import annotations

import contextlib
import logging
import os

import av.logging


@contextlib.contextmanager
def quieted(quiet: bool):
    """For the block, and restored after it: with ``quiet``, FFmpeg's log (damaged-input
    complaints...) is dropped instead of printed. SVT-AV1, which prints by itself and reads
    SVT_LOG when an encoder opens, reports errors only (unless the user set SVT_LOG; always
    with ``quiet``); x265's level is one of its parameters
    (:func:`stdan_cli.video.encoders.resolve_encoding`). FFmpeg's level, the ``libav`` logger's
    and the environment are process-wide: nothing outlives the block."""
    level = av.logging.get_level()
    logger = logging.getLogger("libav")
    logger_level = logger.level
    svt_log = os.environ.get("SVT_LOG")
    if quiet:
        av.logging.set_level(av.logging.PANIC)  # routed to Python logging, where it is discarded
        logger.setLevel(logging.CRITICAL + 1)
        os.environ["SVT_LOG"] = "1"
    else:
        os.environ.setdefault("SVT_LOG", "1")
    try:
        yield
    finally:
        av.logging.set_level(level)
        logger.setLevel(logger_level)
        if svt_log is None:
            os.environ.pop("SVT_LOG", None)
        else:
            os.environ["SVT_LOG"] = svt_log


@contextlib.contextmanager
def captured_errors():
    """FFmpeg's error messages of the block, as a list filled when it ends (to explain a refusal)."""
    previous = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)
    messages: list[str] = []
    try:
        with av.logging.Capture() as logs:
            yield messages
    finally:
        av.logging.set_level(previous)
        messages += [str(message).strip() for level, _, message in logs if level <= av.logging.ERROR]


@contextlib.contextmanager
def silenced_stderr():
    """Send file descriptor 2 to /dev/null, for a moment: encoder libraries (x264, x265,
    SVT-AV1) print there directly, past FFmpeg's log level."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
