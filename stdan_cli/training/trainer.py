"""The training loop: the recipe's optimizer, schedule and loss over global batches, with
checkpoints that resume exactly, validation, a JSONL log and DistributedDataParallel.

A run lives in one folder (``out``, see :mod:`stdan_cli.training.run_folder`): ``run.json``
(what the run is, and the names it made), ``last.pth`` (the newest checkpoint),
``iter_XXXXXX.pth`` (the periodic ones, the newest ``keep``), ``best.pth`` (the best
validation PSNR-Y), ``log.jsonl`` and, when TensorBoard is installed, ``tensorboard/``.
Running the same command again on a folder that holds ``last.pth`` continues that run from
its iteration: the model, optimizer, scheduler, EMA and RNG states are restored, and the
batches are drawn from (seed, iteration), so the losses that follow are those of an
uninterrupted run. A continued run may ask for more iterations (the schedule's periods stay
as they were: past the last one the official scheduler's cosine climbs again) and other log,
save and validation intervals (the log says so); anything else that changes the optimisation
is refused. Ctrl-C or SIGTERM stops at the end of the current iteration (every process at the
same one) and saves first.
"""

from __future__ import annotations

import copy
import json
import math
import os
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Mapping

import torch
from torch.nn.parallel import DistributedDataParallel

from stdan_cli.errors import JobInterrupted, JobMismatch, OptionError, OutputError, TrainingDiverged
from stdan_cli.model import STDAN, check_state_dict, describe_config
from stdan_cli.safe_files import NotRegular, atomic_write, make_folders, open_append, read_limited
from stdan_cli.training.checkpoint import LAST, load_checkpoint, restore_rng_states, save_checkpoint, write_state
from stdan_cli.training.distributed import World, join, launched_world, leave, process_device, settle, step_summary
from stdan_cli.training.objective import charbonnier
from stdan_cli.training.recipe import Recipe, lr_at
from stdan_cli.training.run_folder import RunFolder, open_run_folder
from stdan_cli.training.samples import SampleFailure, Septuplets, check_sample, loader
from stdan_cli.upscalers import Upscaler, resolve_device
from stdan_cli.upscalers.stdan import StdanUpscaler

LOG = "log.jsonl"
BEST = "best.pth"
EMA = "ema.pth"
VAL_IMAGES = "val_images"
LOG_LIMIT = 256 << 20
TRAINING_PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# Recipe keys a continued run may change: they decide how long it runs and what it writes, not
# what a step computes.
RESUMABLE = ("name", "iterations", "log_every", "save_every", "val_every")
# An upscaler and a folder for the images of the first clip (None: no images) -> scores
# (psnr_y, ssim_y, ...; {} when there is nothing to validate on).
Validator = Callable[[Upscaler, "Path | None"], Mapping[str, float]]


def periodic_name(iteration: int) -> str:
    return f"iter_{iteration:06d}.pth"


@dataclass(frozen=True)
class Step:
    """What the progress display is told after each iteration."""

    iteration: int
    total: int
    start: int  # the iteration this process began from (a resumed run's checkpoint)
    loss: float  # of this iteration's global batch
    lr: float
    scores: Mapping[str, float] | None = None  # when it validated
    logged: bool = False  # whether a line of log.jsonl was written for it


@dataclass
class TrainResult:
    out: Path
    checkpoint: Path
    iterations: int
    resumed_from: int  # 0 for a fresh run
    last_loss: float | None
    scores: dict = field(default_factory=dict)  # the last validation's
    changes: dict = field(default_factory=dict)  # what a continued run changed: key -> [before, now]


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``--precision`` on ``device`` (None: float32 throughout, as the
    official training)."""
    if precision not in TRAINING_PRECISIONS:
        raise OptionError(f"unknown precision '{precision}'; use one of {', '.join(TRAINING_PRECISIONS)}")
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if precision != "fp32" and device.type == "cpu":
        raise OptionError(f"--precision {precision} is for GPUs (emulated on this CPU: very slow); use fp32")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def _normalised(d) -> object:
    """Tuples as lists, so a recipe read back from a checkpoint compares equal to a fresh one."""
    return json.loads(json.dumps(d))


def continued_recipe(saved: dict, recipe: Recipe, where: Path) -> tuple[Recipe, dict]:
    """The recipe a continued run uses, and what it changes (key -> [before, now]): ``recipe``
    with the saved run's cosine periods when it only differs in :data:`RESUMABLE` keys (its
    periods may differ only as --iterations scaled them); anything else is a JobMismatch."""
    before = Recipe.from_dict(saved)
    if recipe.periods != before.periods and before.with_iterations(recipe.iterations).periods == recipe.periods:
        recipe = replace(recipe, periods=before.periods)  # the schedule run so far stays the run's
    now, then = _normalised(recipe.to_dict()), _normalised(before.to_dict())
    keys = sorted(set(now) | set(then))
    changed = {k: [then.get(k), now.get(k)] for k in keys if then.get(k) != now.get(k)}
    fixed = [f"{k} {a} != {b}" for k, (a, b) in changed.items() if k not in RESUMABLE]
    if fixed:
        raise JobMismatch(f"{where} holds a run with another recipe ({'; '.join(fixed[:3])}); run it with the "
                          f"same options to continue it (only --iterations, --log-every, --save-every and "
                          f"--val-every may change), or choose another --out")
    return recipe, {k: v for k, v in changed.items() if k != "name"}


def _log_lines(path: Path) -> list[dict]:
    """The entries of a run's log.jsonl; a last line cut short (a kill while logging) is left
    out, anything else that is not a line this tool wrote is a one-line OutputError."""
    try:
        data = read_limited(path, LOG_LIMIT)
    except NotRegular:
        raise OutputError(f"{path} is not a regular file (a link, pipe or device); move it away to continue") \
            from None
    except (OSError, ValueError) as exc:
        raise OutputError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    entries = []
    for number, line in enumerate(lines, 1):
        try:
            entry = json.loads(line.decode("utf-8"))
            if not (isinstance(entry, dict) and isinstance(entry.get("iter"), int)):
                raise ValueError("no iteration")
        except ValueError:  # also UnicodeDecodeError
            if number == len(lines) and not data.endswith(b"\n"):
                break  # cut short when the run was killed
            raise OutputError(f"{path} line {number} is not a line stdan train wrote; move the file away to "
                              f"continue (the checkpoints do not depend on it)") from None
        entries.append(entry)
    return entries


class _Log:
    """log.jsonl (and TensorBoard when installed), written by the main process only."""

    def __init__(self, folder: RunFolder, start: int, enabled: bool):
        self.path, self.enabled, self.board = folder.path / LOG, enabled, None
        if not enabled:
            return
        folder.check_own(LOG)
        if folder.owns(LOG) and self.path.exists():  # a resumed run logs the later iterations again
            kept = [e for e in _log_lines(self.path) if e["iter"] <= start]
            try:
                atomic_write(self.path, "".join(json.dumps(e) + "\n" for e in kept).encode())
            except OSError as exc:
                raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        folder.record_file(LOG)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            return
        folder.check_own("tensorboard")
        folder.record_file("tensorboard")
        self.board = SummaryWriter(str(folder.path / "tensorboard"), purge_step=start + 1)

    def write(self, entry: dict) -> None:
        if not self.enabled:
            return
        try:
            with open_append(self.path) as f:
                f.write((json.dumps(entry) + "\n").encode())
        except NotRegular:
            raise OutputError(f"{self.path} is not a regular file (a link, pipe or device); move it away to "
                              f"continue") from None
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        if self.board is not None:
            for key, value in entry.items():
                if key != "iter" and isinstance(value, (int, float)):
                    self.board.add_scalar(key, value, entry["iter"])

    def close(self) -> None:
        if self.board is not None:
            self.board.close()


@contextmanager
def _stop_requests() -> Iterator[Callable[[], bool]]:
    """SIGINT and SIGTERM ask the loop to stop after the current iteration (see the module)."""
    requested = []

    def ask(signum, frame):
        requested.append(signum)

    try:
        previous = {s: signal.signal(s, ask) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: the caller handles interruptions
        yield lambda: False
        return
    try:
        yield lambda: bool(requested)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def train(
    recipe: Recipe,
    source: Septuplets,
    out: str | os.PathLike,
    *,
    device: str = "auto",
    precision: str = "fp32",
    workers: int = 0,
    init: Mapping[str, torch.Tensor] | None = None,
    validate: Validator | None = None,
    on_step: Callable[[Step], None] | None = None,
    extra: dict | None = None,
    keep: int | None = None,
    ema: float | None = None,
    val_images: bool = False,
    data: dict | None = None,
) -> TrainResult:
    """Train ``STDAN(recipe.model)`` on ``source`` into the folder ``out`` (see the module's
    docstring), starting from ``init`` weights (fine-tuning) or from the seeded initialisation,
    or continuing the run ``out`` holds. ``validate`` scores the model every ``recipe.val_every``
    iterations and at the end (and the EMA of the weights with ``ema``, a decay in (0, 1));
    ``val_images`` saves the first clip's outputs under ``out/val_images/iter_XXXXXX/``;
    ``keep`` periodic checkpoints are kept (None: all, as the official run; 0: none); ``extra``
    is stored in every checkpoint (e.g. what a fine-tuning used) and ``data`` in run.json (the
    data root, its list and sha256). Under torchrun each process trains on its share of every
    batch."""
    recipe.check()
    if keep is not None and keep < 0:
        raise OptionError("--keep cannot be negative (0 keeps no periodic checkpoint)")
    if ema is not None and not 0 < ema < 1:
        raise OptionError(f"--ema is a decay between 0 and 1 (e.g. 0.999), got {ema}")
    out = Path(out)
    world = launched_world()
    if recipe.batch_size % world.size:
        raise OptionError(f"--batch-size {recipe.batch_size} is the global batch: it must be divisible by the "
                          f"{world.size} processes")
    dev = process_device(resolve_device(device), world)
    amp = autocast_dtype(precision, dev)
    folder = open_run_folder(out, world.is_main)
    folder.check_own(LAST)
    last = out / LAST
    state = load_checkpoint(last) if (folder.owns(LAST) or not folder.writer) and last.exists() else None
    changes: dict = {}
    if state is not None:
        recipe, changes = continued_recipe(state["recipe"], recipe, out)
        if state.get("ema_decay") != ema:
            raise JobMismatch(f"{out} holds a run with --ema {state.get('ema_decay') or 'off'}; continue it with "
                              f"the same --ema, or choose another --out")
    start = int(state["iteration"]) if state is not None else 0
    if start > recipe.iterations:
        raise OptionError(f"--iterations {recipe.iterations}: the run in {out} has done {start} already")
    if start < recipe.iterations:  # a sample too small for the crop: now, not after the model is built
        check_sample(source, recipe)

    model = training_model(recipe)
    if state is not None:
        model.load_state_dict(state["params"], strict=True)
    elif init is not None:
        check_state_dict(init, recipe.model)
        model.load_state_dict(init, strict=True)
    model.to(dev).train()
    averaged = None
    if ema is not None:
        averaged = copy.deepcopy(model).eval().requires_grad_(False)
        if state is not None:
            averaged.load_state_dict(state["ema"], strict=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr, betas=recipe.betas,
                                 weight_decay=recipe.weight_decay)
    scaler = torch.amp.GradScaler(dev.type, enabled=amp == torch.float16)
    history = {"seconds": 0.0, "best": None}
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        restore_rng_states(state["rng"])
        history = {"seconds": float(state.get("seconds", 0.0)), "best": state.get("best")}
    del state

    from stdan_cli.evaluation.provenance import utc_now, versions

    folder.claim({"recipe": recipe.to_dict(), "data": data or {}, "session": {
        "started": utc_now().isoformat(), "from_iteration": start, "iterations": recipe.iterations,
        "device": str(dev), "precision": precision, "autocast": str(amp).replace("torch.", "") if amp else None,
        "world_size": world.size, "keep": keep, "ema": ema, "versions": versions(), "changes": changes}})
    join(world, dev)
    try:
        # With two input frames (frames=3) the recurrence never reaches its hidden-state convolutions.
        net = DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None,
                                      broadcast_buffers=False, find_unused_parameters=recipe.frames < 5) \
            if world.distributed else model
        run = _Run(recipe, folder, model, averaged, ema, optimizer, scaler, world, keep, extra or {}, history,
                   val_images)
        result = _loop(run, source, net, amp, dev, start, workers, validate, on_step, changes)
        result.changes = changes
        settle(world)
        return result
    finally:
        leave(world)


def training_model(recipe: Recipe) -> STDAN:
    """``STDAN(recipe.model)`` with the seeded initialisation and the recipe's stochastic depth
    in both Swin stacks (the encoder and the decoder, each from 0 to ``drop_path_rate``)."""
    torch.manual_seed(recipe.seed)
    model = STDAN(recipe.model)
    for stack in (model.feature_extraction, model.feature_recon):
        stack.set_drop_path(recipe.drop_path_rate)
    return model


@dataclass
class _Run:
    """What the loop writes with: the model (and its EMA), the optimizer, the folder."""

    recipe: Recipe
    folder: RunFolder
    model: STDAN
    averaged: STDAN | None
    ema: float | None
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    world: World
    keep: int | None
    extra: dict
    history: dict  # seconds trained before this session; the best validation so far
    val_images: bool

    @property
    def out(self) -> Path:
        return self.folder.path

    def update_average(self) -> None:
        """EMA <- decay EMA + (1 - decay) weights (buffers copied)."""
        if self.averaged is None:
            return
        with torch.no_grad():
            for a, p in zip(self.averaged.parameters(), self.model.parameters()):
                a.lerp_(p.detach(), 1.0 - self.ema)
            for a, b in zip(self.averaged.buffers(), self.model.buffers()):
                a.copy_(b)

    def save(self, iteration: int, seconds: float) -> None:
        """last.pth, the periodic iter_XXXXXX.pth on the save interval (the oldest beyond
        ``keep`` removed) and ema.pth (main process only)."""
        if not self.world.is_main:
            return
        r, folder = self.recipe, self.folder
        copies = []
        if iteration % r.save_every == 0 and self.keep != 0:
            copies.append(periodic_name(iteration))
        for name in [LAST, *copies]:
            folder.check_own(name)
            folder.record_file(name)
        schedule = {"name": "CosineAnnealingLR_Restart", "periods": list(r.periods),
                    "restart_weights": list(r.restart_weights), "eta_min": r.eta_min, "last_iteration": iteration}
        extra = {**self.extra, "seconds": seconds, "best": self.history["best"], "ema_decay": self.ema}
        if self.averaged is not None:
            extra["ema"] = {k: v.detach().cpu() for k, v in self.averaged.state_dict().items()}
        save_checkpoint(self.out / LAST, model=self.model, optimizer=self.optimizer, scaler=self.scaler,
                        iteration=iteration, recipe=r.to_dict(), schedule=schedule, extra=extra,
                        copies=[self.out / c for c in copies])
        if self.averaged is not None:
            self.write_weights(EMA, extra["ema"], iteration, {"ema_decay": self.ema})
        periodic = sorted(f for f in folder.files if f.startswith("iter_") and f.endswith(".pth"))
        if self.keep is not None:
            for name in periodic[: max(0, len(periodic) - self.keep)]:
                folder.remove(name)

    def write_weights(self, name: str, params: dict, iteration: int, info: dict) -> None:
        """A weights file (loads with --weights; no training state, so not a run to continue)."""
        self.folder.check_own(name)
        self.folder.record_file(name)
        write_state(self.out / name, {"params": params, "iteration": iteration, "recipe": self.recipe.to_dict(),
                                      **info})

    def validate(self, iteration: int, dev: torch.device, validate: Validator) -> dict:
        """The scores of the weights (and of their EMA, as ``ema_val_*``); best.pth when the
        PSNR-Y is the best so far."""
        images = ema_images = None
        if self.val_images:
            self.folder.check_own(VAL_IMAGES)
            self.folder.record_file(VAL_IMAGES)
            images = make_folders(self.out, Path(VAL_IMAGES) / f"iter_{iteration:06d}")
            if self.averaged is not None:
                ema_images = make_folders(self.out, Path(VAL_IMAGES) / f"iter_{iteration:06d}_ema")
        scores = _validate(self.model, self.recipe, dev, validate, images)
        if self.averaged is not None:
            ema_scores = _validate(self.averaged, self.recipe, dev, validate, ema_images)
            scores.update({f"ema_{k}": v for k, v in ema_scores.items()})
        psnr = scores.get("val_psnr_y")
        best = self.history["best"]
        if psnr is not None and math.isfinite(psnr) and (best is None or psnr > best["val_psnr_y"]):
            self.history["best"] = {"iter": iteration, "val_psnr_y": psnr}
            params = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
            self.write_weights(BEST, params, iteration, {"val_psnr_y": psnr})
        return scores


def _validate(model: STDAN, recipe: Recipe, dev: torch.device, validate: Validator, images: Path | None) -> dict:
    was_training = model.training
    model.eval()
    try:
        upscaler = StdanUpscaler(model, describe_config(recipe.model), dev, "fp32")
        return {f"val_{k}": float(v) for k, v in validate(upscaler, images).items()}
    finally:
        model.train(was_training)


def _loop(run: _Run, source, net, amp, dev, start, workers, validate, on_step, changes) -> TrainResult:
    recipe, world, model, optimizer, scaler, out = run.recipe, run.world, run.model, run.optimizer, run.scaler, run.out
    total = recipe.iterations
    log = _Log(run.folder, start, world.is_main)
    if changes and start:
        log.write({"iter": start, "continued": changes})  # e.g. {"iterations": [12, 20]}
    iteration, loss_value, scores, since_log = start, None, {}, []
    batches = loader(source, recipe, start, world.rank, world.size, workers, pin_memory=dev.type == "cuda")
    started, before = time.perf_counter(), run.history["seconds"]

    def seconds() -> float:  # trained in all sessions
        return round(before + time.perf_counter() - started, 3)

    try:
        with _stop_requests() as stop_requested:
            stream = iter(batches)
            while iteration < total:
                try:
                    batch = next(stream)
                except RuntimeError:
                    if stop_requested():  # data workers were interrupted too
                        raise KeyboardInterrupt from None
                    raise
                if isinstance(batch, SampleFailure):  # a sample a data worker could not make
                    batch.raise_error()
                lq, gt = batch
                iteration += 1
                lr = lr_at(recipe, iteration)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                lq, gt = lq.to(dev, non_blocking=True), gt.to(dev, non_blocking=True)
                with torch.autocast(dev.type, dtype=amp or torch.float32, enabled=amp is not None):
                    output = net(lq)
                loss = charbonnier(output.float(), gt, recipe.charbonnier_eps, recipe.loss_reduction)
                if recipe.loss_reduction == "sum":  # DDP averages over processes: the sum over the global batch
                    loss = loss * world.size
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if recipe.grad_clip is not None:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                run.update_average()
                loss_value, stop = step_summary(loss, stop_requested(), world)
                if not math.isfinite(loss_value):
                    raise TrainingDiverged(f"the loss is {loss_value} at iteration {iteration}; lower the learning rate "
                                      f"or use --precision fp32 (the last good checkpoint is {out / LAST})")
                since_log.append(loss_value)
                entry = None
                if iteration % recipe.log_every == 0 or iteration == total:
                    entry = {"iter": iteration, "loss": loss_value, "loss_mean": sum(since_log) / len(since_log),
                             "lr": lr, "seconds": seconds()}
                    since_log = []
                validating = validate is not None and (
                    (recipe.val_every and iteration % recipe.val_every == 0) or iteration == total)
                step_scores = None
                if validating and world.is_main:
                    step_scores = scores = run.validate(iteration, dev, validate)
                    if scores:
                        entry = {**(entry or {"iter": iteration, "loss": loss_value, "lr": lr}), **scores}
                if entry is not None:
                    log.write(entry)
                if iteration % recipe.save_every == 0 or iteration == total:
                    run.save(iteration, seconds())
                if on_step is not None and world.is_main:
                    on_step(Step(iteration, total, start, loss_value, lr, step_scores, entry is not None))
                # A request that came during on_step counts for this iteration when alone (with
                # several processes, the next iteration's all-reduce decides it, for all at once).
                if (stop or (not world.distributed and stop_requested())) and iteration < total:
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        if iteration > start:
            run.save(iteration, seconds())
        raise JobInterrupted(f"interrupted at iteration {iteration} of {total}; "
                             + (f"saved {out / LAST}: run the same command to continue" if iteration > start
                                else "nothing new to save")) from None
    finally:
        log.close()
    return TrainResult(out, out / LAST, iteration, start, loss_value, scores)
