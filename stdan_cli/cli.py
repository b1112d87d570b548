"""The ``stdan`` command: a thin click layer over the Python API.

Each verb lives in its own module and is registered below.
"""

from __future__ import annotations

import click

from stdan_cli import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="stdan")
def main() -> None:
    """Upscale videos 4x in size and 2x in frame rate with STDAN.

    STDAN (Wang et al., "STDAN: Deformable Attention Network for Space-Time Video
    Super-Resolution", TNNLS 2023) turns N low-resolution frames into 2N-1 frames at
    4x the resolution. Run `stdan COMMAND --help` for the options of each command.
    """


# Verbs are registered here, one line each (keep this marker for tooling):
# --- commands ---
from stdan_cli.cli_weights import download_weights  # noqa: E402
main.add_command(download_weights)
from stdan_cli.cli_upscale import upscale  # noqa: E402
main.add_command(upscale)
from stdan_cli.cli_eval import eval_command  # noqa: E402
main.add_command(eval_command)
