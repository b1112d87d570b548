"""``--part I/N``: which chunks of a job one array task makes (chunk k when k mod N is I-1).
Light on purpose: the command line parses the option before the job layer is imported."""

from __future__ import annotations

import re
from dataclasses import dataclass

from stdan_cli.errors import OptionError


@dataclass(frozen=True)
class Part:
    index: int  # 1-based
    count: int

    def wants(self, chunk: int) -> bool:
        return chunk % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_part(text: str) -> Part:
    """``I/N`` with 1 <= I <= N (e.g. ``$((SLURM_ARRAY_TASK_ID))/$SLURM_ARRAY_TASK_COUNT``)."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise OptionError(f"--part {text}: use I/N with 1 <= I <= N, e.g. --part 1/4")
    return Part(int(match[1]), int(match[2]))
