"""The global random generators, kept from leaking out of a test (conftest's autouse fixtures)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


@contextmanager
def restored_random_state() -> Iterator[None]:
    """PyTorch's (CPU), NumPy's and Python's global generators as they were before the block."""
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
