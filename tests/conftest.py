"""Shared test fixtures. Tests never reach the network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
REFERENCE_DIR = REPO.parent / "shared" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """../shared/reference (official parity fixtures); skips visibly when absent."""
    if not REFERENCE_DIR.is_dir():
        pytest.skip(f"parity fixtures not found at {REFERENCE_DIR} (the ../shared/reference folder is absent)")
    return REFERENCE_DIR
