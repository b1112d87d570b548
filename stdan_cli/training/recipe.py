"""The training recipe: every value that decides a run, the official one by default.

The official configuration (``codes/options/train/train_stdan.yml``): batch 18 (over 6 GPUs),
LQ crops of 32 (GT 128), 7 frames (the odd ones are the input), flips, rotations and random
reversal of time, Adam lr 2e-4 with betas (0.9, 0.99), CosineAnnealingLR_Restart over four
periods of 150,000 iterations with restarts at 150,000, 300,000 and 450,000 (weights 1),
eta_min 1e-7, the Charbonnier loss with eps 1e-6 summed over the batch, stochastic depth
(drop_path_rate 0.1) in both Swin stacks, fp32, seed 0, validation every 1,000 iterations and
a checkpoint every 1,000 (docs/training.md compares every item with the official files).

A recipe is ``official``, ``small`` (the same recipe on :meth:`STDANConfig.small`) or a TOML,
YAML or JSON file whose keys are :class:`Recipe` fields or the official option names that map
one to one onto them (:data:`OFFICIAL_KEYS`: ``lr_G``, ``T_period``, ``restarts``, ...);
``base = "official"|"small"`` picks what the file changes and ``model`` changes network
hyper-parameters. Options override any of them. Every value is checked for its type here, so
a wrong one is a one-line error before anything is made. The recipe is written, as a plain
dict, into every checkpoint and into the run folder's ``run.json``.
"""

from __future__ import annotations

import json
import math
import typing
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from stdan_cli.errors import OptionError
from stdan_cli.model import STDANConfig
from stdan_cli.safe_files import NotRegular, read_limited

RECIPES = ("official", "small")
OFFICIAL_PERIOD = 150_000
LOSS_REDUCTIONS = ("sum", "mean")
TRAIN_DEGRADATIONS = ("bi", "bd")
MIN_SCALED_PERIOD = 10  # a period scaled to fit --iterations is never shorter (see Recipe.with_iterations)
RECIPE_FILE_LIMIT = 1 << 20
# Official option names (train_stdan.yml) that are one recipe key each. ``restarts`` is checked
# against the periods (the official list is the iterations where each period after the first begins).
OFFICIAL_KEYS = {"lr_G": "lr", "T_period": "periods", "eta_min": "eta_min", "restart_weights": "restart_weights",
                 "niter": "iterations", "manual_seed": "seed", "val_freq": "val_every", "weight_decay_G": "weight_decay",
                 "LQ_size": "crop", "N_frames": "frames", "print_freq": "log_every",
                 "save_checkpoint_freq": "save_every"}


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
    loss_reduction: str = "sum"  # official: summed over the batch; "mean" is independent of the batch size
    drop_path_rate: float = 0.1  # stochastic depth of both Swin stacks, 0 at the first block to this at the last
    degradation: str = "bi"  # how the input frames are made: bi (MATLAB bicubic) or bd (blur, then every 4th pixel)
    grad_clip: float | None = None  # max gradient norm; the official recipe clips nothing
    seed: int = 0
    val_every: int = 1000  # iterations between validations; 0: never
    log_every: int = 100
    save_every: int = 1000

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
        if self.loss_reduction not in LOSS_REDUCTIONS:
            raise OptionError(f"loss_reduction must be sum (official) or mean, got {self.loss_reduction!r}")
        if not 0 <= self.drop_path_rate < 1:
            raise OptionError(f"drop_path_rate must be in [0, 1), got {self.drop_path_rate}")
        if self.degradation not in TRAIN_DEGRADATIONS:
            raise OptionError(f"--degradation must be bi or bd, got {self.degradation!r}")

    def with_iterations(self, iterations: int) -> "Recipe":
        """The same recipe run for ``iterations``: its cosine periods scaled to fit, so the
        schedule still ends at eta_min (a run cut in the middle of a period would not). Fewer
        periods when the scaled ones would be shorter than :data:`MIN_SCALED_PERIOD`, so a short
        run still starts near lr instead of collapsing to eta_min."""
        if iterations == sum(self.periods):
            return replace(self, iterations=iterations)
        n = max(1, min(len(self.periods), iterations // MIN_SCALED_PERIOD))
        total = sum(self.periods[:n])
        bounds = [round(iterations * sum(self.periods[: k + 1]) / total) for k in range(n)]
        periods = tuple(b - a for a, b in zip([0] + bounds[:-1], bounds))
        return replace(self, iterations=iterations, periods=periods)


def _typed(where: str, key: str, value, kind):
    """``value`` as the annotated type ``kind`` of a recipe or model field (int, float, bool, str,
    tuple[T, ...], tuple[T, T], T | None), or a one-line OptionError naming the key."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if args and type(None) in args:  # T | None
        return None if value is None else _typed(where, key, value, next(a for a in args if a is not type(None)))
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise OptionError(f"{where}{key} must be a list, got {value!r}")
        if args[-1] is not Ellipsis and len(value) != len(args):
            raise OptionError(f"{where}{key} must hold {len(args)} values, got {len(value)}")
        return tuple(_typed(where, f"{key}[{i}]", v, args[0]) for i, v in enumerate(value))
    ok = {bool: lambda v: isinstance(v, bool),
          int: lambda v: isinstance(v, int) and not isinstance(v, bool),
          float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          str: lambda v: isinstance(v, str)}[kind]
    if not ok(value):
        raise OptionError(f"{where}{key} must be {'a number' if kind is float else kind.__name__}, got {value!r}")
    return float(value) if kind is float else value


def _checked(cls, d: dict, what: str, where: str = "") -> dict:
    """``d``'s keys known to the dataclass ``cls`` and each value of its field's type."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise OptionError(f"{where}unknown {what} key(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return {k: _typed(where, k, v, hints[k]) for k, v in d.items()}


def _fields(d: dict, where: str = "") -> dict:
    return _checked(Recipe, {k: v for k, v in d.items() if k not in ("model",)}, "recipe", where)


def _model_config(d: dict | STDANConfig, where: str = "") -> STDANConfig:
    if isinstance(d, STDANConfig):
        return d
    return STDANConfig(**_checked(STDANConfig, d, "model", where + "model."))


def _official_names(data: dict, where: str) -> dict:
    """The official option names in a recipe file as recipe keys (see :data:`OFFICIAL_KEYS`)."""
    out = {}
    for key, value in data.items():
        name = OFFICIAL_KEYS.get(key, key)
        if name in out:
            raise OptionError(f"{where}{key} and {name} say the same thing; keep one")
        out[name] = value
    restarts = out.pop("restarts", None)
    if restarts is not None:
        periods = out.get("periods")
        if not isinstance(periods, (list, tuple)) or not isinstance(restarts, (list, tuple)):
            raise OptionError(f"{where}restarts needs T_period (or periods) beside it, both lists")
        expected = [sum(periods[: k + 1]) for k in range(len(periods) - 1)]
        if list(restarts) != expected:
            raise OptionError(f"{where}restarts {list(restarts)} must be where each period after the first begins "
                              f"({expected} for T_period {list(periods)}): a restart is the start of a period here")
    return out


def builtin_recipe(name: str) -> Recipe:
    if name == "official":
        return Recipe()
    if name == "small":
        return Recipe(name="small", model=STDANConfig.small())
    raise OptionError(f"unknown recipe '{name}'; use official, small or a TOML/YAML/JSON file")


def _read_file(path: Path) -> dict:
    try:
        text = read_limited(path, RECIPE_FILE_LIMIT).decode("utf-8")
    except NotRegular:
        raise OptionError(f"--config {path} is not a regular file") from None
    except (OSError, ValueError) as exc:  # ValueError: too large, or not UTF-8
        raise OptionError(f"cannot read --config {path}: {getattr(exc, 'strerror', None) or exc}") from None
    suffix = path.suffix.lower()
    kind = {".json": "JSON", ".yml": "YAML", ".yaml": "YAML"}.get(suffix, "TOML")
    try:
        if kind == "JSON":
            data = json.loads(text)
        elif kind == "YAML":
            import yaml

            data = yaml.safe_load(text)
        else:
            import tomllib

            data = tomllib.loads(text)
    except ImportError:
        raise OptionError("TOML recipes need Python 3.11 or later; write the recipe as JSON") from None
    except Exception as exc:  # json.JSONDecodeError, tomllib.TOMLDecodeError, yaml.YAMLError
        if not isinstance(exc, ValueError) and type(exc).__module__.split(".")[0] != "yaml":
            raise
        raise OptionError(f"--config {path} is not valid {kind}: {' '.join(str(exc).split())}") from None
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
        where = f"--config {path}: "
        data = _official_names(_read_file(path), where)
        base = builtin_recipe(str(data.pop("base", "official")))
        model = data.pop("model", {})
        if not isinstance(model, dict):
            raise OptionError(f"{where}[model] must be a table of STDAN hyper-parameters")
        own_periods = "periods" in data
        recipe = replace(base, name=str(path), model=_model_config({**asdict(base.model), **model}, where),
                         **_fields(data, where))
    iterations = overrides.pop("iterations", None)
    recipe = replace(recipe, **_fields(overrides))
    if iterations is not None:
        recipe = replace(recipe, iterations=iterations) if own_periods else recipe.with_iterations(iterations)
    recipe.check()
    return recipe


def lr_at(recipe: Recipe, iteration: int) -> float:
    """The learning rate of 1-based ``iteration`` under the official CosineAnnealingLR_Restart
    stepped as the official train.py steps it (once before each iteration, so iteration t uses
    the scheduler's ``last_epoch == t``), in closed form. Restarts are at r = T1, T1 + T2, ...
    (the official ``restarts`` list), where lr is w lr. In the period that began at r (0 for the
    first): lr = eta_min + (A)(1 + cos(pi (t - r) / T)) / 2 with T the period's length and
    A = w lr - eta_min, w its restart weight (1 for the first). Past a period's end (only the
    last period's, on a run longer than the periods) the official recursion climbs back with
    A = lr - eta_min whatever the weight, which this follows too."""
    start, weight, period = 0, 1.0, recipe.periods[0]
    edge = 0
    for k, length in enumerate(recipe.periods[:-1]):
        edge += length
        if iteration >= edge:
            start, weight, period = edge, recipe.restart_weights[k], recipe.periods[k + 1]
    base = recipe.lr * (weight if iteration - start <= period else 1.0)
    return recipe.eta_min + (base - recipe.eta_min) * (1 + math.cos(math.pi * (iteration - start) / period)) / 2
