"""``stdan export``: the network's two parts as ONNX files (see :mod:`stdan_cli.upscalers.engines.export`)."""

from __future__ import annotations

import re
from pathlib import Path

import click


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
def export_command(out_dir, weights, precision, size, window, check, overwrite):
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
    from stdan_cli.errors import OptionError
    from stdan_cli.model import load_model
    from stdan_cli.upscalers.engines import export_parts
    from stdan_cli.upscalers.engines.check import compare_with_eager
    from stdan_cli.weights import resolve_weights

    try:
        import onnx  # noqa: F401
    except ImportError:
        raise OptionError('stdan export needs onnx: pip install "onnx>=1.15" "onnxruntime>=1.17" (or, in the stdan-cli folder, pip install ".[onnx]")') from None
    fixed = _size(size)
    model = load_model(resolve_weights(weights)).model
    for part in export_parts(model, out_dir, window, precision, fixed, overwrite):
        click.echo(f"wrote {part.path} ({part.path.stat().st_size / 2**20:.1f} MiB, {part.seconds:.1f} s; "
                   "onnx.checker passed)")
    if check:
        for line in compare_with_eager(model, out_dir, window, precision, fixed):
            click.echo(line)


def backend_option(fn):
    from stdan_cli.upscalers.engines.backends import BACKENDS

    help = ("Where the network runs: " + "; ".join(f"{b.name}: {b.help}" for b in BACKENDS.values()) + ". Engines "
            "are exported once and cached beside the weights; the onnx or openvino extra must be installed (pip "
            "install '.[onnx]' or '.[openvino]' in the stdan-cli folder).")
    return click.option("--backend", type=click.Choice(list(BACKENDS)), default="auto", show_default=True,
                        help=help)(fn)


def prepare_backend(upscaler, window: int, console) -> None:
    """Prepare an engine upscaler's parts for ``window``-frame windows before the run, with a
    phase line per preparation and its time (nothing is shown when the cache has them;
    ``compile`` always compiles, and says how long that took here)."""
    engine = getattr(upscaler, "engine", None)
    if engine is None:
        return
    engine.notify = lambda line: console.print(line, soft_wrap=True)
    try:
        engine.prepare(window)
    finally:
        engine.notify = None
