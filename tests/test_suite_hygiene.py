"""The test suite's own rules: no test leaks random state into the tests after it."""

from __future__ import annotations

import random

import numpy as np
import torch
from random_state import restored_random_state


def test_seeding_inside_the_block_leaves_every_global_generator_as_it_was():
    before = (torch.random.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    with restored_random_state():
        torch.manual_seed(123)
        np.random.seed(123)
        random.seed(123)
        torch.rand(3), np.random.rand(3), random.random()
    assert torch.equal(torch.random.get_rng_state(), before[0])
    assert np.array_equal(np.random.get_state()[1], before[1]) and random.getstate() == before[2]
