"""Shared pieces of the job and cluster tests: lossless output, exact frame comparison, and
`stdan upscale` run as a child process that a test signals at a known point."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from media import read_frames

from stdan_cli.pipeline import UpscaleOptions
from stdan_cli.video.encoders import EncodeSettings

REPO = Path(__file__).resolve().parents[1]
GATE = Path(__file__).resolve().parent / "gated_stdan.py"
LOSSLESS = UpscaleOptions(encoding=EncodeSettings(codec="ffv1", pix_fmt="yuv444p"))
LOSSLESS_ARGS = ["--codec", "ffv1", "--pix-fmt", "yuv444p"]


def same_frames(a: Path, b: Path) -> bool:
    fa, ta = read_frames(a)
    fb, tb = read_frames(b)
    return len(fa) == len(fb) and ta == tb and all(np.array_equal(x, y) for x, y in zip(fa, fb))


def stdan_command(src, out, weights, *extra):
    return [sys.executable, "-m", "stdan_cli", "upscale", str(src), str(out), "--weights", str(weights),
            "--device", "cpu", "--precision", "fp32", "--threads", "1", *LOSSLESS_ARGS, *extra]


def run_until(command, work_dir: Path, done_records: int, sig: int, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run ``command`` (from :func:`stdan_command`) until ``work_dir`` holds ``done_records`` done
    records, then send ``sig``. The child cannot run ahead of the test: once that many records
    exist, its next model window waits (tests/gated_stdan.py) until the signal has been sent."""
    assert command[1:3] == ["-m", "stdan_cli"], command
    release = work_dir.parent / f".release-{work_dir.name}-{done_records}"
    release.unlink(missing_ok=True)
    gated = [command[0], str(GATE), str(work_dir), str(done_records), str(release), *command[3:]]
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    proc = subprocess.Popen(gated, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if len(list(work_dir.glob("*.done.json"))) >= done_records:
            proc.send_signal(sig)
            break
        time.sleep(0.01)
    release.touch()
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        release.unlink(missing_ok=True)
    return subprocess.CompletedProcess(command, proc.returncode, out, err)
