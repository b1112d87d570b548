"""The recipe's formulas (Charbonnier loss, CosineAnnealingLR_Restart) and its configuration."""

from __future__ import annotations

import json
import math

import pytest

from stdan_cli.errors import OptionError
from stdan_cli.model import STDANConfig
from stdan_cli.training import Recipe, load_recipe, lr_at


def test_official_recipe_values():
    r = load_recipe("official")
    assert (r.batch_size, r.crop, r.frames, r.use_flip, r.use_rot, r.random_reverse) == (18, 32, 7, True, True, True)
    assert (r.lr, r.betas, r.eta_min, r.seed, r.val_every) == (2e-4, (0.9, 0.99), 1e-7, 0, 1000)
    assert r.periods == (150_000,) * 4 and r.iterations == 600_000 and r.model == STDANConfig()
    assert load_recipe("small").model == STDANConfig.small()
    assert load_recipe("small").to_dict() | {"name": "official", "model": None} == r.to_dict() | {"model": None}


def _closed_form(t: int) -> float:
    """The official schedule: restarts at 150000, 300000, 450000 (train_stdan.yml), T = 150000."""
    r = max(x for x in (0, 150_000, 300_000, 450_000) if x <= t)
    return 1e-7 + (2e-4 - 1e-7) * (1 + math.cos(math.pi * (t - r) / 150_000)) / 2


@pytest.mark.parametrize("t", [1, 2, 75_000, 149_999, 150_000, 150_001, 150_002, 225_000, 300_000, 300_001,
                               450_000, 525_000, 600_000])
def test_learning_rate_follows_the_formula_at_chosen_iterations(t):
    assert lr_at(load_recipe("official"), t) == pytest.approx(_closed_form(t), rel=1e-12, abs=1e-18)


def test_iterations_scale_the_periods_and_the_schedule_still_ends_at_eta_min():
    r = load_recipe("official", iterations=1000)
    assert r.periods == (250, 250, 250, 250) and r.iterations == 1000
    assert lr_at(r, 249) == pytest.approx(r.eta_min, abs=1e-8) and lr_at(r, 250) == r.lr  # the restart
    assert lr_at(r, 1000) == pytest.approx(r.eta_min)  # the last period starts at 750 and ends at eta_min


def test_recipe_files_toml_and_json(tmp_path):
    toml = tmp_path / "r.toml"
    toml.write_text('base = "small"\nlr = 1e-4\nperiods = [50, 50]\nrestart_weights = [0.5]\niterations = 100\n'
                    '[model]\nnf = 8\n')
    r = load_recipe(str(toml), batch_size=4)
    assert (r.lr, r.periods, r.restart_weights, r.batch_size, r.model.nf, r.model.embed_dim) == \
        (1e-4, (50, 50), (0.5,), 4, 8, 24)
    assert lr_at(r, 50) == pytest.approx(0.5e-4)
    js = tmp_path / "r.json"
    js.write_text(json.dumps({"crop": 16, "use_rot": False}))
    r = load_recipe(str(js), iterations=80)
    assert (r.crop, r.use_rot, r.model, r.periods) == (16, False, STDANConfig(), (20, 20, 20, 20))
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


def test_yaml_recipe_with_the_official_key_names(tmp_path):
    yml = tmp_path / "r.yml"
    yml.write_text("base: small\nlr_G: 1.0e-4\nT_period: [20, 20]\nrestarts: [20]\nrestart_weights: [0.5]\n"
                   "eta_min: 1.0e-6\nniter: 40\nmanual_seed: 3\nLQ_size: 16\nval_freq: 10\n"
                   "save_checkpoint_freq: 5\nprint_freq: 2\nloss_reduction: mean\nmodel:\n  nf: 8\n")
    r = load_recipe(str(yml))
    assert (r.lr, r.periods, r.restart_weights, r.eta_min, r.iterations, r.seed, r.crop) == \
        (1e-4, (20, 20), (0.5,), 1e-6, 40, 3, 16)
    assert (r.val_every, r.save_every, r.log_every, r.loss_reduction, r.model.nf) == (10, 5, 2, "mean", 8)
    yml.write_text("T_period: [20, 20]\nrestarts: [21]\n")
    with pytest.raises(OptionError, match=r"restarts \[21\] must be where each period after the first begins"):
        load_recipe(str(yml))
    yml.write_text("lr: 1.0e-4\nlr_G: 2.0e-4\n")
    with pytest.raises(OptionError, match="lr_G and lr say the same thing"):
        load_recipe(str(yml))
    yml.write_text("lr: [1\n")
    with pytest.raises(OptionError, match="is not valid YAML"):
        load_recipe(str(yml))


@pytest.mark.parametrize("text, message", [
    ('lr = "x"', "lr must be a number, got 'x'"),
    ("betas = [0.9]", "betas must hold 2 values, got 1"),
    ('[model]\nnf = "x"', "model.nf must be int, got 'x'"),
    ("use_flip = 1", "use_flip must be bool"),
    ('periods = [10, "a"]', r"periods\[1\] must be int"),
    ("iterations = 2.5", "iterations must be int"),
])
def test_wrong_types_in_a_recipe_file_are_one_line_errors(tmp_path, text, message):
    bad = tmp_path / "bad.toml"
    bad.write_text(text + "\n")
    with pytest.raises(OptionError, match=message):
        load_recipe(str(bad))
