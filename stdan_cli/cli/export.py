"""``stdan export``: the network's two parts as ONNX files (see :mod:`stdan_cli.upscalers.engines.export`)."""

from __future__ import annotations

import re
from pathlib import Path

import click
from rich.console import Console

from stdan_cli.cli.progress import PLAIN_INTERVAL, PhaseDisplay


def _size(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    m = re.fullmatch(r"(\d+)x(\d+)", value.strip().lower())
    if m is None:
        raise click.BadParameter(f"'{value}' is not HxW (e.g. 64x112)", param_hint="--size")
    return int(m.group(1)), int(m.group(2))


@click.command("export")
@click.option("-o", "--output", "out_dir", type=click.Path(path_type=Path, file_okay=False), required=True,
              metavar="DIR", help="Folder for the ONNX files (created if missing). Required.")
@click.option("--weights", default=None, metavar="PATH|NAME",
              help="Checkpoint file or registry name. Default: the official checkpoint (must be downloaded).")
@click.option("--precision", type=click.Choice(["fp32", "fp16"]), default="fp32", show_default=True,
              help="fp32; fp16: heavy convolutions and matmuls in float16 with float32 activations (as "
                   "--precision fp16), half the file size, for GPUs.")
@click.option("--size", default=None, metavar="HxW",
              help="Fix the input height and width (multiples of 8; static shapes suit TensorRT and NPUs). "
                   "Default: dynamic height and width.")
@click.option("--window", type=int, default=4, show_default=True,
              help="Frames per window of the reconstruction file (the pipeline's --window).")
@click.option("--check/--no-check", default=True, show_default=True,
              help="Run both files in ONNX Runtime on the CPU and compare them with eager PyTorch.")
@click.option("-y", "--overwrite", is_flag=True, help="Replace files of the same names in DIR. Default: refuse.")
@click.option("-q", "--quiet", is_flag=True, help="No progress or results, only errors. Default: off.")
@click.option("--log-interval", type=click.FloatRange(min=0, min_open=True), default=PLAIN_INTERVAL, show_default=True,
              metavar="SECONDS",
              help="When stderr is not a terminal (a log file, nohup, Slurm), print the phase and its elapsed "
                   "time every SECONDS (and when a phase starts) instead of the live line.")
def export_command(out_dir, weights, precision, size, window, check, overwrite, quiet, log_interval):
    """Write STDAN as ONNX files in DIR, for ONNX Runtime, OpenVINO, TensorRT and others.

    \b
    DIR/features-<precision>.onnx          frames (F, 3, H, W) float32 in [0, 1]
                                            -> features (F, 64, H, W): each frame on its own
    DIR/reconstruct-n<N>-<precision>.onnx  features (B, N, 64, H, W), positions (T,) int64
                                            -> outputs (B, T, 3, 4H, 4W), unclamped
    positions: which of the 2N-1 output times to make (0, 2, ... are the input frames).
    H and W: multiples of 8 (pad bottom/right, crop the output). Opset 17; deformable
    sampling is GridSample. Each file is checked with onnx.checker.
    """
    from stdan_cli.api.export import ExportRequest, run_export

    request = ExportRequest(out_dir, weights, precision, _size(size), window, check, overwrite)
    with PhaseDisplay(Console(stderr=True), quiet, log_interval) as display:
        for line in run_export(request, display.phase):
            display.print(line)
