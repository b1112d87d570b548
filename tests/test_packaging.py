"""A plain (non-editable) wheel carries what the package reads at run time: the weights
registry and the official Vimeo-90K test lists."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    project = tmp / "project"  # build a copy: never leave build/ in the source tree
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, project / name)
    shutil.copytree(REPO / "stdan_cli", project / "stdan_cli", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(project), "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp)],
        capture_output=True, text=True,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    return next(tmp.glob("stdan_cli-*.whl"))


@pytest.mark.slow
def test_wheel_ships_the_registry(wheel, tmp_path):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        shipped = json.loads(zf.read("stdan_cli/weights/registry.json"))
        zf.extractall(tmp_path / "site")
    assert "stdan_cli/weights/registry.py" in names
    assert shipped == json.loads((REPO / "stdan_cli" / "weights" / "registry.json").read_text())

    probe = "from stdan_cli.weights.registry import registry_path; print(registry_path())"
    # -S skips .pth files, so an editable install of the source tree cannot shadow the wheel;
    # site-packages stays on PYTHONPATH for the dependencies.
    env = {"PYTHONPATH": f"{tmp_path / 'site'}{os.pathsep}{sysconfig.get_paths()['purelib']}", "PATH": ""}
    out = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()) == tmp_path / "site" / "stdan_cli" / "weights" / "registry.json"


def test_wheel_ships_the_vimeo_lists(wheel):
    with zipfile.ZipFile(wheel) as zf:
        for speed, count in (("fast", 1225), ("medium", 4983), ("slow", 1616)):
            shipped = zf.read(f"stdan_cli/evaluation/lists/{speed}_testset.txt").decode()
            assert shipped == (REPO / "stdan_cli" / "evaluation" / "lists" / f"{speed}_testset.txt").read_text()
            assert len(shipped.split()) == count
