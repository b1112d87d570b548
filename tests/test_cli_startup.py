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


def probe(*args: str, cwd=None) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120, cwd=cwd)
    return json.loads(out.stdout.strip().splitlines()[-1])


def probe_error(tmp_path, *args: str) -> tuple[dict, str]:
    """The probe's result and the error line it printed, run in ``tmp_path``."""
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr.strip()


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


@pytest.mark.parametrize("args, code, error", [
    (["upscale", "in.mp4", "out.mp4", "--outscale", "5"], 2, "--outscale must be more than 0 and at most 4"),
    (["upscale", "in.mp4", "out.mp4", "--stride", "4"], 2, "--stride must be between 1"),
    (["upscale", "nosuch.mp4", "out.mp4"], 1, "input nosuch.mp4 does not exist"),
    (["upscale", "in.mp4", "out.xyz"], 1, "cannot tell the container from 'out.xyz'"),
    (["upscale", "in.mp4", "taken.mp4"], 1, "output taken.mp4 already exists"),
    (["upscale", "in.mp4", "in.mp4"], 1, "output in.mp4 is the input file"),
    (["upscale", "in.mp4", "nofolder/out.mp4"], 1, "folder nofolder does not exist"),
    (["upscale", "in.mp4", "in.mp4", "outdir/", "--outscale", "0"], 2, "--outscale must be more than 0"),
])
def test_a_mistake_is_refused_before_torch_loads(tmp_path, args, code, error):
    # Issue 32: an option error, a missing input or an unknown extension took seconds to refuse.
    (tmp_path / "in.mp4").write_bytes(b"not decoded before the checks")
    (tmp_path / "taken.mp4").write_bytes(b"")
    result, stderr = probe_error(tmp_path, *args)
    assert result == {"code": code, "heavy": []}
    assert stderr.splitlines() == [f"error: {stderr.removeprefix('error: ')}"] and error in stderr


@pytest.mark.slow
def test_a_real_run_still_imports_torch(tmp_path):
    # The probe would also pass if nothing were ever imported: a command that runs must load torch
    # (this input passes the early checks; only opening it shows it is no video).
    (tmp_path / "in.mp4").write_bytes(b"not a video")
    assert "torch" in probe("upscale", "in.mp4", "out.mp4", "--model", "bicubic", cwd=tmp_path)["heavy"]


def test_the_verb_table_matches_each_verb():
    import click

    from stdan_cli.cli.main import main

    ctx = click.Context(main)
    for name, (_, short) in COMMANDS.items():
        command = main.get_command(ctx, name)
        assert command.name == name
        assert command.help.strip().split("\n")[0] == short
