"""The checks a run makes before PyTorch and the model are loaded: options no run can use, an
output that exists, cannot be written or names no container, and an input file that is not
there. They take milliseconds, so a mistake is refused at once; planning
(:func:`stdan_cli.pipeline.plan.validate`) checks them again with the input opened.

This module imports neither PyTorch nor the decoder."""

from __future__ import annotations

import os
from pathlib import Path

from stdan_cli.pipeline.options import UpscaleOptions
from stdan_cli.pipeline.output import check_output, container_format
from stdan_cli.video.sources import check_input, is_local_file


def is_batch(inputs: list[str], output: str | os.PathLike) -> bool:
    """Several inputs, an input folder, or an output that is (or is written as) a folder."""
    out = os.fspath(output)
    return (len(inputs) > 1 or any(is_local_file(i) and Path(i).is_dir() for i in inputs)
            or Path(out).is_dir() or out.endswith(("/", os.sep)))


def check_before_loading(inputs: list[str], output: str | os.PathLike, options: UpscaleOptions) -> None:
    """Raise the options', the output's and a missing input's error (one input and one output;
    several inputs get each file's checks from :func:`stdan_cli.api.check_batch`)."""
    options.check()
    if is_batch(inputs, output):
        return
    source, out = inputs[0], Path(output)
    check_output(out, options.overwrite, source)
    container_format(out)
    check_input(source)
