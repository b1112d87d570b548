"""The training recipe: every value that decides a run, the official one by default.

The official configuration (``codes/options/train/train_stdan.yml``): batch 18 (over 6 GPUs),
LQ crops of 32 (GT 128), 7 frames (the odd ones are the input), flips, rotations and random
reversal of time, Adam lr 2e-4 with betas (0.9, 0.99), CosineAnnealingLR_Restart over four
periods of 150,000 iterations (restart weights 1), eta_min 1e-7, the Charbonnier loss with
eps 1e-6, seed 0, validation every 1,000 iterations.

A recipe is ``official``, ``small`` (the same recipe on :meth:`STDANConfig.small`) or a TOML or
JSON file whose keys are :class:`Recipe` fields (``base = "official"|"small"`` picks what the
file changes; ``[model]`` changes network hyper-parameters); options override any of them. The
recipe is written, as a plain dict, into every checkpoint.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from stdan_cli.errors import OptionError
from stdan_cli.model import STDANConfig

RECIPES = ("official", "small")
OFFICIAL_PERIOD = 150_000


@dataclass(frozen=True)
class Recipe:
    """One training run's configuration (see the module's docstring for the official values)."""

    name: str = "official"  # official, small, or the file it came from
    model: STDANConfig = field(default_factory=STDANConfig)
    iterations: int = 4 * OFFICIAL_PERIOD
    batch_size: int = 18  # global: the same whatever the number of processes
    crop: int = 32  # LQ crop size; the GT crop is scale x this
    frames: int = 7  # GT frames per sample; the odd ones (1st, 3rd, ...) are the input
    use_flip: bool = True
    use_rot: bool = True
    random_reverse: bool = True
    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    periods: tuple[int, ...] = (OFFICIAL_PERIOD,) * 4  # cosine periods; a restart begins each after the first
    restart_weights: tuple[float, ...] = (1.0, 1.0, 1.0)  # lr at each restart, times lr
    eta_min: float = 1e-7
    charbonnier_eps: float = 1e-6
    grad_clip: float | None = None  # max gradient norm; the official recipe clips nothing
    seed: int = 0
    val_every: int = 1000  # iterations between validations; 0: never
    log_every: int = 100
    save_every: int = 5000

    def to_dict(self) -> dict:
        d = asdict(self)
        d["model"] = asdict(self.model)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Recipe":
        d = dict(d)
        model = d.pop("model", {})
        return cls(model=_model_config(model), **_fields(d))

    def check(self) -> None:
        """A one-line OptionError for any value a run cannot use."""
        m = self.model.size_multiple
        positive = {"iterations": self.iterations, "batch_size": self.batch_size, "crop": self.crop,
                    "log_every": self.log_every, "save_every": self.save_every}
        for key, value in positive.items():
            if value < 1:
                raise OptionError(f"{key.replace('_', '-')} must be at least 1, got {value}")
        if self.crop % m:
            raise OptionError(f"--crop {self.crop}: the input crop must be a multiple of {m} (the model's size multiple)")
        if self.frames < 3 or self.frames % 2 == 0:
            raise OptionError(f"frames must be odd and at least 3 (the odd ones are the input), got {self.frames}")
        if self.val_every < 0:
            raise OptionError("val_every cannot be negative (0 turns validation off)")
        if not self.periods or any(p < 1 for p in self.periods):
            raise OptionError("periods must be one or more positive iteration counts")
        if len(self.restart_weights) < len(self.periods) - 1:
            raise OptionError(f"restart_weights needs {len(self.periods) - 1} values, one per restart")
        if not (self.lr > 0 and 0 <= self.eta_min <= self.lr and self.charbonnier_eps > 0):
            raise OptionError("need lr > 0, 0 <= eta_min <= lr and charbonnier_eps > 0")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise OptionError("grad_clip must be positive (or absent: no clipping)")

    def with_iterations(self, iterations: int) -> "Recipe":
        """The same recipe run for ``iterations``: its cosine periods scaled to fit, so the
        schedule still ends at eta_min (a run cut in the middle of a period would not)."""
        if iterations == sum(self.periods):
            return replace(self, iterations=iterations)
        n = min(len(self.periods), iterations)
        total = sum(self.periods[:n])
        bounds = [round(iterations * sum(self.periods[: k + 1]) / total) for k in range(n)]
        periods = tuple(b - a for a, b in zip([0] + bounds[:-1], bounds))
        return replace(self, iterations=iterations, periods=periods)


def _fields(d: dict) -> dict:
    known = {f.name for f in fields(Recipe)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise OptionError(f"unknown recipe key(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    out = dict(d)
    for key in ("betas", "periods", "restart_weights"):
        if key in out:
            out[key] = tuple(out[key])
    return out


def _model_config(d: dict | STDANConfig) -> STDANConfig:
    if isinstance(d, STDANConfig):
        return d
    known = {f.name for f in fields(STDANConfig)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise OptionError(f"unknown model key(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
    return STDANConfig(**d)


def builtin_recipe(name: str) -> Recipe:
    if name == "official":
        return Recipe()
    if name == "small":
        return Recipe(name="small", model=STDANConfig.small())
    raise OptionError(f"unknown recipe '{name}'; use official, small or a TOML/JSON file")


def _read_file(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise OptionError(f"cannot read --config {path}: {exc.strerror or exc}") from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import tomllib

            data = tomllib.loads(text)
    except ImportError:
        raise OptionError("TOML recipes need Python 3.11 or later; write the recipe as JSON") from None
    except ValueError as exc:  # json.JSONDecodeError and tomllib.TOMLDecodeError
        raise OptionError(f"--config {path} is not valid {'JSON' if path.suffix.lower() == '.json' else 'TOML'}: "
                          f"{exc}") from None
    if not isinstance(data, dict):
        raise OptionError(f"--config {path} must hold a table of recipe keys")
    return data


def load_recipe(spec: str = "official", **overrides) -> Recipe:
    """``official``, ``small`` or a recipe file, with ``overrides`` (None values ignored).
    ``iterations`` rescales the cosine periods (:meth:`Recipe.with_iterations`) unless the file
    sets its own periods."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    own_periods = False
    if spec in RECIPES:
        recipe = builtin_recipe(spec)
    else:
        path = Path(spec)
        if not path.is_file():
            raise OptionError(f"--config {spec}: not official, small, or an existing recipe file")
        data = _read_file(path)
        base = builtin_recipe(str(data.pop("base", "official")))
        model = data.pop("model", {})
        if not isinstance(model, dict):
            raise OptionError(f"--config {path}: [model] must be a table of STDAN hyper-parameters")
        own_periods = "periods" in data
        try:
            recipe = replace(base, name=str(path), model=_model_config({**asdict(base.model), **model}), **_fields(data))
        except TypeError as exc:
            raise OptionError(f"--config {path}: {exc}") from None
    iterations = overrides.pop("iterations", None)
    recipe = replace(recipe, **_fields(overrides))
    if iterations is not None:
        recipe = replace(recipe, iterations=iterations) if own_periods else recipe.with_iterations(iterations)
    recipe.check()
    return recipe


def lr_at(recipe: Recipe, iteration: int) -> float:
    """The learning rate of 1-based ``iteration`` under CosineAnnealingLR_Restart, in closed
    form: in the period that began at restart r (0 for the first; the official scheduler puts
    restarts one iteration after each period's end), lr = eta_min + (w lr - eta_min)(1 + cos(pi
    (t - r) / T)) / 2, where T is the period's length and w its restart weight (1 for the first)."""
    start, weight, period = 0, 1.0, recipe.periods[0]
    edge = 0
    for k, length in enumerate(recipe.periods[:-1]):
        edge += length
        if iteration >= edge + 1:
            start, weight, period = edge + 1, recipe.restart_weights[k], recipe.periods[k + 1]
    base = recipe.lr * weight
    return recipe.eta_min + (base - recipe.eta_min) * (1 + math.cos(math.pi * (iteration - start) / period)) / 2
