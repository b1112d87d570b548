"""The one job driver and the layer order: every job option reaches every file of a batch, a
range's video lasts the range, and no package imports one above it."""

from __future__ import annotations

import ast
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner
from media import make_video, read_frames

from stdan_cli.cli import main

PACKAGE = Path(__file__).resolve().parents[1] / "stdan_cli"
LOSSLESS_ARGS = ["--model", "bicubic", "--codec", "ffv1", "--pix-fmt", "yuv444p"]


@pytest.mark.slow
def test_batch_applies_the_job_options_to_every_file(tmp_path):
    """A batch with --start/--end/--chunk-frames/--scene-threshold gives each file exactly the
    frames the single run with the same options gives (earlier, batch mode dropped them)."""
    a = make_video(tmp_path / "a.mkv", n_frames=30, rate=10, codec="ffv1", pix_fmt="yuv444p")
    b = make_video(tmp_path / "b.mkv", n_frames=25, rate=10, codec="ffv1", pix_fmt="yuv444p")
    job = ["--start", "1", "--end", "2", "--chunk-frames", "4", "--scene-threshold", "0"]
    batch = CliRunner(env={"COLUMNS": "400"}).invoke(main, ["upscale", str(a), str(b), str(tmp_path / "out") + "/",
                                                            *LOSSLESS_ARGS, *job, "--work-dir", str(tmp_path / "w")])
    assert batch.exit_code == 0, batch.output
    for src in (a, b):
        single = tmp_path / f"single-{src.name}"
        result = CliRunner().invoke(main, ["upscale", str(src), str(single), *LOSSLESS_ARGS, *job])
        assert result.exit_code == 0, result.output
        frames, times = read_frames(tmp_path / "out" / src.name)
        expected, expected_times = read_frames(single)
        assert len(frames) == 19 and times == expected_times
        assert all(np.array_equal(x, y) for x, y in zip(frames, expected))
    assert not (tmp_path / "w").exists() or not any((tmp_path / "w").iterdir())


def test_batch_checks_the_job_options_before_any_work(tmp_path):
    a = make_video(tmp_path / "a.mkv", n_frames=3)
    b = make_video(tmp_path / "b.mkv", n_frames=3)
    result = CliRunner().invoke(main, ["upscale", str(a), str(b), str(tmp_path / "out") + "/", "--model", "bicubic",
                                       "--start", "2", "--end", "1"])
    assert result.exit_code == 2 and "must be after --start" in result.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_a_ranges_video_lasts_the_range(tmp_path, suffix):
    """--start 0.4 --end 1.0 of a 25 fps input: 15 input frames, 0.6 s of video, the last frame
    shown for its whole duration (chunked or not)."""
    src = make_video(tmp_path / "in.mp4", n_frames=30, rate=25, audio=True)
    for chunk in ("1000", "4"):
        out = tmp_path / f"out{chunk}{suffix}"
        result = CliRunner().invoke(main, ["upscale", str(src), str(out), *LOSSLESS_ARGS[:2], "--codec", "ffv1",
                                           "--start", "0.4", "--end", "1.0", "--chunk-frames", chunk])
        assert result.exit_code == 0, result.output
        with av.open(str(out)) as c:
            video = c.streams.video[0]
            if suffix == ".mkv":
                h, m, s = video.metadata["DURATION"].split(":")
                seconds = int(h) * 3600 + int(m) * 60 + float(s)
            else:
                seconds = float(video.duration * video.time_base)
            packets = [p for p in c.demux(video) if p.size]
            last = max(packets, key=lambda p: p.pts)
            ends = float((last.pts + last.duration) * last.time_base)  # the last frame keeps its duration
        assert seconds == pytest.approx(0.6, abs=1e-3) and ends == pytest.approx(0.6, abs=1e-3), (chunk, seconds, ends)


# --- the layer order --------------------------------------------------------------------------------

# cli -> api -> jobs and cluster -> pipeline -> upscalers and video -> model; weights, evaluation
# and training beside them; errors, safe_files and the package root below everything.
LAYERS = {
    "cli": 6, "api": 5, "cluster": 4, "jobs": 3, "pipeline": 2, "upscalers": 1, "video": 1, "model": 0,
}
BESIDE = {"weights", "evaluation", "training"}  # may use the model and each other, never a layer above
# The package root's modules (errors, progress, safe_files, ...): below every package.
ROOT_MODULES = {p.stem for p in PACKAGE.glob("*.py")}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("stdan_cli."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("stdan_cli.")}
    return found


def test_no_package_imports_a_layer_above_it():
    """Each import (lazy ones inside functions too) goes down the layer order; so there is no cycle
    between packages."""
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).parts
        if len(rel) == 1:
            continue
        here = rel[0]
        for there in _imports(path) - {here}:
            if here in LAYERS and there in LAYERS and LAYERS[there] > LAYERS[here]:
                wrong.append(f"{'/'.join(rel)} imports {there}")
            if here in BESIDE and there in LAYERS and LAYERS[there] >= LAYERS["jobs"]:
                wrong.append(f"{'/'.join(rel)} imports {there}")
            if here in LAYERS and LAYERS[here] < LAYERS["cluster"] and there in BESIDE - {"weights", "engines"}:
                wrong.append(f"{'/'.join(rel)} imports {there}")
    assert not wrong, wrong


def test_every_layer_package_exists():
    """The layer table names only packages there are (a renamed or removed one would make its
    rules check nothing)."""
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert set(LAYERS) | BESIDE <= packages, sorted(set(LAYERS) | BESIDE - packages)
    assert packages <= set(LAYERS) | BESIDE, sorted(packages - set(LAYERS) - BESIDE)


def test_the_command_line_goes_through_the_api_only():
    """The cli package imports the API and the package root's modules (errors, progress...),
    never the layers below the API or the packages beside them: the API is the one way in."""
    wrong = []
    for path in sorted((PACKAGE / "cli").rglob("*.py")):
        for there in _imports(path) - {"cli", "api"} - ROOT_MODULES:
            wrong.append(f"cli/{path.relative_to(PACKAGE / 'cli').as_posix()} imports {there}")
    assert not wrong, wrong


def test_no_import_cycle_between_packages():
    """The package graph (every import, lazy ones inside functions too) has no cycle."""
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).parts
        here = rel[0] if len(rel) > 1 else path.stem
        graph.setdefault(here, set()).update(_imports(path) - {here})

    def cycle_from(start: str, node: str, seen: tuple) -> tuple | None:
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                return (*seen, nxt)
            if nxt not in seen:
                found = cycle_from(start, nxt, (*seen, nxt))
                if found:
                    return found
        return None

    cycles = [c for c in (cycle_from(p, p, (p,)) for p in sorted(graph)) if c]
    assert not cycles, cycles
