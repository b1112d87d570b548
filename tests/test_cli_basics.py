"""The command group: version, help, and every option of every verb documented with its default."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from stdan_cli import __version__
from stdan_cli.cli import main


def test_version_and_help():
    runner = CliRunner()
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0 and "STDAN" in result.output


@pytest.mark.slow
def test_python_dash_m():
    out = subprocess.run([sys.executable, "-m", "stdan_cli", "--version"], capture_output=True, text=True, check=True)
    assert __version__ in out.stdout


def test_unknown_verb_is_a_one_line_error():
    result = CliRunner().invoke(main, ["frobnicate"])
    assert result.exit_code != 0 and "Traceback" not in result.output


def test_every_option_of_every_command_has_help_and_default():
    runner = CliRunner()
    for name, command in main.commands.items():
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0, name
        for param in command.params:
            if not isinstance(param, click.Option) or param.name == "help":
                continue
            assert param.help, f"{name} {param.opts} has no help text"
            documented = param.is_flag or param.required or param.show_default or "default" in param.help.lower()
            assert documented, f"{name} {param.opts}: say its default (show_default=True or 'default' in the help)"
