"""``stdan upscale``: the command-line face of :func:`stdan_cli.pipeline.upscale_video`."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.progress import TextColumn

from stdan_cli.cli.common import model_options, progress_bar
from stdan_cli.pipeline import MODES, UpscaleOptions, plan_upscale, run_plan, validate
from stdan_cli.upscalers import build_upscaler
from stdan_cli.video.encode import CODECS, EncodeSettings


@click.command("upscale")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.argument("output_path", metavar="OUTPUT", type=click.Path(path_type=Path))
@click.option("--mode", type=click.Choice(list(MODES)), default="spacetime", show_default=True,
              help="; ".join(f"{m.name}: {m.help}" for m in MODES.values()) + ".")
@model_options
@click.option("--window", type=int, default=4, show_default=True, help="Input frames per model window (the model was trained with 4).")
@click.option("--stride", type=int, default=3, show_default=True,
              help="Frames between window starts (1..window-1); smaller means more overlap and more work.")
@click.option("--tile", type=int, default=None,
              help="Tile size in input pixels for large frames. Default: automatic from --memory-budget.")
@click.option("--tile-overlap", type=int, default=None,
              help="Overlap between tiles in input pixels. Default: the model's advice (24 for STDAN).")
@click.option("--memory-budget", type=float, default=None, metavar="GIB",
              help="GiB one window may use when tiles are chosen automatically. Default: 85% of the GPU's "
                   "free memory (CUDA, MPS), 4 on the CPU.")
@click.option("--outscale", type=float, default=4.0, show_default=True, metavar="S",
              help="Output size as a multiple of the input size, more than 0 and at most 4: the model's 4x "
                   "frames are resized (antialiased bicubic) to round(S x input size), even where the pixel "
                   "format needs it. 1 keeps the input size at twice the frame rate.")
@click.option("--compare", is_flag=True,
              help="Side by side, each at the output size (the file is twice as wide): LEFT a plain bicubic "
                   "resize of the input with averaged in-between frames (what --model bicubic makes), RIGHT "
                   "the model. With --start/--end, a short comparison clip. Default: off.")
@click.option("--codec", type=click.Choice(CODECS), default="libx264", show_default=True, help="Video encoder.")
@click.option("--crf", type=int, default=None,
              help="Constant-quality level. Default: 18 (x264), 20 (x265), 24 (VP9), 30 (SVT-AV1); lossless codecs ignore it.")
@click.option("--preset", default=None, help="Encoder speed preset. Default: medium (x264/x265), 8 (SVT-AV1).")
@click.option("--pix-fmt", default=None,
              help="Output pixel format. Default: yuv420p, or a 10-bit format for 10-bit inputs when the codec has one.")
@click.option("-y", "--overwrite", is_flag=True, help="Replace OUTPUT if it exists. Default: refuse.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary, only errors. Default: off.")
def upscale(input_path, output_path, mode, model_name, weights, device, precision, threads, window, stride,
            tile, tile_overlap, memory_budget, outscale, compare, codec, crf, preset, pix_fmt, overwrite, quiet):
    """Upscale INPUT to OUTPUT: 4x width and height, twice the frame rate.

    Any video FFmpeg reads (an image is a 1-frame video). Audio and subtitles are copied
    unchanged, colour tags and rotation are kept. The output is written to a temporary file
    beside OUTPUT and renamed when complete.
    """
    console = Console(stderr=True, quiet=quiet)
    options = UpscaleOptions(
        mode=mode, window=window, stride=stride, tile=tile, tile_overlap=tile_overlap, memory_budget=memory_budget,
        encoding=EncodeSettings(codec=codec, pix_fmt=pix_fmt, crf=crf, preset=preset), overwrite=overwrite,
        outscale=outscale, compare=compare,
    )
    validate(input_path, output_path, options)  # the user's mistakes first, before loading a model
    upscaler = build_upscaler(model_name, weights, device, precision, threads)
    plan = plan_upscale(input_path, output_path, upscaler.descriptor, options, upscaler.device)
    fps = TextColumn("{task.fields[fps]:.2f} fps")
    with progress_bar(console, "upscaling", "frames", fps, disable=quiet) as bar:
        task = bar.add_task("upscale", total=None, fps=0.0)

        def progress(done: int, total: int | None) -> None:
            elapsed = bar.tasks[0].elapsed or 1e-9
            bar.update(task, completed=done, total=total if total and total >= done else None, fps=done / elapsed)

        summary = run_plan(plan, upscaler, progress)
    for line in summary.warnings:
        console.print(f"[yellow]warning:[/] {line}", soft_wrap=True)
    for line in summary.notices:
        console.print(f"notice: {line}", soft_wrap=True)
    (w0, h0), (w1, h1) = summary.size_in, summary.size_out
    size = f"{w1}x{h1} (scale {summary.outscale:g})"
    if summary.compare:
        size = f"{w1}x{h1} (side by side: bicubic | {upscaler.name}, each {w1 // 2}x{h1} at scale {summary.outscale:g})"
    console.print(
        f"wrote {summary.output}: {summary.frames_out} frames {size} at {float(summary.rate_out):g} fps "
        f"from {summary.frames_in} frames {w0}x{h0} in {summary.seconds:.1f} s "
        f"({summary.frames_out / max(summary.seconds, 1e-9):.2f} fps, {upscaler.name}, {upscaler.precision}"
        f"{f', {summary.tiles} tiles' if summary.tiles > 1 else ''})",
        soft_wrap=True,
    )
