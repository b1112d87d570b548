"""`stdan` with a gate before every model window, for tests/job_runs.py:run_until.

    python tests/gated_stdan.py WORK_DIR RECORDS RELEASE_FILE ARGS...

runs ``stdan ARGS...``; once WORK_DIR holds RECORDS done records, each model window waits
until RELEASE_FILE exists (the test creates it after signalling), so the run is stopped at a
known point instead of racing the test."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from stdan_cli.upscalers.stdan import StdanUpscaler


def main() -> None:
    work, records, release = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    upscale = StdanUpscaler.__call__

    def gated(self, *args, **kwargs):
        if len(list(work.glob("*.done.json"))) >= records:
            while not release.exists():
                time.sleep(0.01)
        return upscale(self, *args, **kwargs)

    StdanUpscaler.__call__ = gated
    from stdan_cli.cli import main as stdan

    stdan(sys.argv[4:], prog_name="stdan")


if __name__ == "__main__":
    main()
