"""The ``stdan`` command group, and the one place where errors become one line.

Every verb is a thin click layer over the Python API; whatever it raises that a user can
cause or meet (their mistakes and the world's: a missing file, a full disk, no weights, out
of memory, Ctrl-C) is printed here as one ``error:`` line with a non-zero exit, never a
traceback. The API itself removes any partial output before the error reaches this layer.
"""

from __future__ import annotations

import importlib

import click

from stdan_cli import __version__
from stdan_cli.errors import StdanError, is_out_of_memory

# Each verb's module is imported only when that verb runs (or shows its help): `stdan --help`
# reads its lines from this table and never loads PyTorch, PyAV or Ray.
COMMANDS = {
    "upscale": ("stdan_cli.cli.upscale:upscale", "Upscale INPUT to OUTPUT: 4x width and height, twice the frame rate."),
    "eval": ("stdan_cli.cli.eval:eval_command", "Score a model with the paper's protocol: PSNR/SSIM on RGB and on Y."),
    "download-weights": ("stdan_cli.cli.weights:download_weights",
                         "Download, verify and cache the STDAN checkpoint NAME (default: the registry's default, "
                         "stdan-vimeo)."),
    "export": ("stdan_cli.cli.export:export_command",
               "Write STDAN as ONNX files in DIR, for ONNX Runtime, OpenVINO, TensorRT and others."),
    "train": ("stdan_cli.cli.train:train_command", "Train STDAN with the paper's recipe on Vimeo-90K."),
    "finetune": ("stdan_cli.cli.train:finetune_command", "Fine-tune STDAN on your own footage."),
}

OUT_OF_MEMORY = "out of memory even with the smallest tiles; try a smaller --tile or --memory-budget, or fewer --threads"


def error_line(exc: BaseException) -> tuple[str, int] | None:
    """The one-line message and exit code for an error a user can meet; None for a bug."""
    if isinstance(exc, StdanError):
        return str(exc), exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted; nothing was written", 130
    if is_out_of_memory(exc):
        return OUT_OF_MEMORY, 1
    import av  # loaded by whichever verb raised an FFmpeg error

    if isinstance(exc, (av.error.FFmpegError, OSError)):
        # FFmpeg's errors while muxing (a full disk, a target that refuses writing) and the
        # operating system's: the reason and the file, without a traceback.
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        filename = getattr(exc, "filename", None)
        return f"{reason}" + (f": {filename}" if filename else ""), 1
    return None


class StdanGroup(click.Group):
    """The verbs of :data:`COMMANDS`, each imported when it is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name][0].split(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, short) for name, (_, short) in COMMANDS.items()])

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except BaseException as exc:
            line = error_line(exc)
            if line is None:
                raise
            click.echo(f"error: {line[0]}", err=True)
            ctx.exit(line[1])


@click.group(cls=StdanGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="stdan")
def main() -> None:
    """Upscale videos 4x in size and 2x in frame rate with STDAN.

    STDAN (Wang et al., "STDAN: Deformable Attention Network for Space-Time Video
    Super-Resolution", TNNLS 2023) turns N low-resolution frames into 2N-1 frames at
    4x the resolution. Run `stdan COMMAND --help` for the options of each command.
    """

