"""The recipe's formulas (Charbonnier loss, CosineAnnealingLR_Restart) and its configuration."""

from __future__ import annotations

import json
import math

import pytest
import torch

from stdan_cli.errors import OptionError
from stdan_cli.model import STDANConfig
from stdan_cli.training import Recipe, load_recipe, lr_at
from stdan_cli.training.objective import charbonnier


def test_official_recipe_values():
    r = load_recipe("official")
    assert (r.batch_size, r.crop, r.frames, r.use_flip, r.use_rot, r.random_reverse) == (18, 32, 7, True, True, True)
    assert (r.lr, r.betas, r.eta_min, r.seed, r.val_every) == (2e-4, (0.9, 0.99), 1e-7, 0, 1000)
    assert r.periods == (150_000,) * 4 and r.iterations == 600_000 and r.model == STDANConfig()
    assert load_recipe("small").model == STDANConfig.small()
    assert load_recipe("small").to_dict() | {"name": "official", "model": None} == r.to_dict() | {"model": None}


def test_charbonnier_is_the_mean_of_sqrt_of_squared_difference_plus_eps():
    a = torch.tensor([[0.0, 0.5], [1.0, 0.25]])
    b = torch.tensor([[0.0, 0.0], [0.5, 1.0]])
    expected = (math.sqrt(0 + 1e-6) + math.sqrt(0.25 + 1e-6) + math.sqrt(0.25 + 1e-6) + math.sqrt(0.5625 + 1e-6)) / 4
    assert charbonnier(a, b).item() == pytest.approx(expected, rel=1e-6)


def _closed_form(t: int) -> float:
    """The official schedule: restarts at 150001, 300001, 450001 (the scheduler adds 1), T = 150000."""
    r = max(x for x in (0, 150_001, 300_001, 450_001) if x <= t)
    return 1e-7 + (2e-4 - 1e-7) * (1 + math.cos(math.pi * (t - r) / 150_000)) / 2


@pytest.mark.parametrize("t", [1, 2, 75_000, 149_999, 150_000, 150_001, 150_002, 225_001, 300_000, 300_001,
                               450_001, 525_000, 600_000])
def test_learning_rate_follows_the_formula_at_chosen_iterations(t):
    assert lr_at(load_recipe("official"), t) == pytest.approx(_closed_form(t), rel=1e-12, abs=1e-18)


def test_learning_rate_equals_the_official_recursive_scheduler():
    """The official CosineAnnealingLR_Restart computes each lr from the previous one; the closed
    form equals it at every iteration of a short four-period schedule."""
    periods, eta_min, base = [10, 10, 10, 10], 1e-7, 2e-4
    restarts = [11, 21, 31]  # the official scheduler's [10, 20, 30] + 1
    recipe = Recipe(periods=tuple(periods), iterations=40, eta_min=eta_min, lr=base)
    lr, last_restart, t_max = base, 0, periods[0]
    for t in range(1, 41):
        if t in restarts:
            last_restart, t_max, lr = t, periods[restarts.index(t) + 1], base
        elif (t - last_restart - 1 - t_max) % (2 * t_max) == 0:
            lr = lr + (base - eta_min) * (1 - math.cos(math.pi / t_max)) / 2
        else:
            lr = ((1 + math.cos(math.pi * (t - last_restart) / t_max))
                  / (1 + math.cos(math.pi * (t - last_restart - 1) / t_max)) * (lr - eta_min) + eta_min)
        assert lr_at(recipe, t) == pytest.approx(lr, rel=1e-9), t


def test_iterations_scale_the_periods_and_the_schedule_still_ends_at_eta_min():
    r = load_recipe("official", iterations=1000)
    assert r.periods == (250, 250, 250, 250) and r.iterations == 1000
    assert lr_at(r, 250) == pytest.approx(r.eta_min) and lr_at(r, 251) == pytest.approx(r.lr)
    assert lr_at(r, 1000) == pytest.approx(r.eta_min, abs=1e-8)  # the last period starts at 751: 1 step short


def test_recipe_files_toml_and_json(tmp_path):
    toml = tmp_path / "r.toml"
    toml.write_text('base = "small"\nlr = 1e-4\nperiods = [50, 50]\nrestart_weights = [0.5]\niterations = 100\n'
                    '[model]\nnf = 8\n')
    r = load_recipe(str(toml), batch_size=4)
    assert (r.lr, r.periods, r.restart_weights, r.batch_size, r.model.nf, r.model.embed_dim) == \
        (1e-4, (50, 50), (0.5,), 4, 8, 24)
    assert lr_at(r, 51) == pytest.approx(0.5e-4)
    js = tmp_path / "r.json"
    js.write_text(json.dumps({"crop": 16, "use_rot": False}))
    r = load_recipe(str(js), iterations=8)
    assert (r.crop, r.use_rot, r.model, r.periods) == (16, False, STDANConfig(), (2, 2, 2, 2))
    assert Recipe.from_dict(r.to_dict()) == r


@pytest.mark.parametrize("spec, overrides, message", [
    ("nope", {}, "not official, small, or an existing recipe file"),
    ("small", {"crop": 12}, "multiple of 8"),
    ("small", {"batch_size": 0}, "batch-size must be at least 1"),
])
def test_unusable_recipes_are_one_line_errors(spec, overrides, message):
    with pytest.raises(OptionError, match=message):
        load_recipe(spec, **overrides)


def test_unknown_keys_in_a_file_are_named(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("learning_rate = 1\n")
    with pytest.raises(OptionError, match="unknown recipe key.*learning_rate"):
        load_recipe(str(bad))
    bad.write_text("lr = [\n")
    with pytest.raises(OptionError, match="not valid TOML"):
        load_recipe(str(bad))
