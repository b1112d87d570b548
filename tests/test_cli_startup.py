"""`stdan --help`, every verb's `--help` and option errors never load PyTorch (issue 22, item 4).

Each case runs in a fresh interpreter: this test process has imported torch long ago."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from stdan_cli.cli.main import COMMANDS

PROBE = """
import json, sys
from stdan_cli.cli import main
try:
    main(sys.argv[1:], prog_name="stdan")
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "heavy": sorted(m for m in ("torch", "cv2", "ray", "scenedetect") if m in sys.modules)}))
"""


def probe(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("args, code", [
    (["--help"], 0),
    *[([verb, "--help"], 0) for verb in COMMANDS],
    (["upscale", "in.mp4", "out.mp4", "--crf", "x"], 2),  # a click option error
    (["upscale", "in.mp4", "out.mp4", "--mode", "nope"], 2),
    (["upscale", "in.mp4"], 2),  # OUTPUT missing
])
def test_help_and_option_errors_import_no_torch(args, code):
    result = probe(*args)
    assert result == {"code": code, "heavy": []}


@pytest.mark.slow
def test_a_real_run_still_imports_torch():
    # The probe would also pass if nothing were ever imported: a command that runs must load torch.
    assert "torch" in probe("upscale", "missing-input.mp4", "out.mp4", "--model", "bicubic")["heavy"]


def test_the_verb_table_matches_each_verb():
    import click

    from stdan_cli.cli.main import main

    ctx = click.Context(main)
    for name, (_, short) in COMMANDS.items():
        command = main.get_command(ctx, name)
        assert command.name == name
        assert command.help.strip().split("\n")[0] == short
