"""The training loop: the recipe's optimizer, schedule and loss over global batches, with
checkpoints that resume exactly, validation, a JSONL log and DistributedDataParallel.

A run lives in one folder (``out``): ``last.pth`` (the newest checkpoint), ``log.jsonl`` and,
when TensorBoard is installed, ``tensorboard/``. Running the same command again on a folder
that holds ``last.pth`` continues that run from its iteration: the model, optimizer,
scheduler and RNG states are restored, and the batches are drawn from (seed, iteration), so
the losses that follow are those of an uninterrupted run. Ctrl-C or SIGTERM stops at the end of
the current iteration (every process at the same one) and saves first.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping

import torch
from torch.nn.parallel import DistributedDataParallel

from stdan_cli.errors import JobInterrupted, JobMismatch, OptionError, OutputError, StdanError, TrainingDiverged
from stdan_cli.model import STDAN, check_state_dict, describe_config
from stdan_cli.safe_files import atomic_write
from stdan_cli.training.checkpoint import LAST, load_checkpoint, restore_rng_states, save_checkpoint
from stdan_cli.training.distributed import World, join, launched_world, leave, process_device, step_summary
from stdan_cli.training.objective import charbonnier
from stdan_cli.training.recipe import Recipe, lr_at
from stdan_cli.training.samples import Septuplets, check_sample, loader
from stdan_cli.upscalers import Upscaler, resolve_device
from stdan_cli.upscalers.stdan import StdanUpscaler

LOG = "log.jsonl"
TRAINING_PRECISIONS = ("auto", "fp32", "bf16", "fp16")
Validator = Callable[[Upscaler], Mapping[str, float]]  # an upscaler -> scores (psnr_y, ssim_y, ...)


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


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``--precision`` on ``device`` (None: float32 throughout)."""
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


def _recipe_mismatch(saved: dict, recipe: Recipe) -> list[str]:
    now, before = _normalised(recipe.to_dict()), _normalised(saved)
    keys = sorted((set(now) | set(before)) - {"name"})
    return [f"{k} {before.get(k)} != {now.get(k)}" for k in keys if before.get(k) != now.get(k)]


def _rewrite_log(path: Path, upto: int) -> None:
    """Keep the log's lines up to iteration ``upto`` (a resumed run logs the later ones again)."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut short when the run was killed
        if isinstance(entry, dict) and entry.get("iter", math.inf) <= upto:
            kept.append(line)
    atomic_write(path, "".join(k + "\n" for k in kept).encode())


class _Log:
    """log.jsonl (and TensorBoard when installed), written by the main process only."""

    def __init__(self, out: Path, start: int, enabled: bool):
        self.path, self.enabled, self.board = out / LOG, enabled, None
        if not enabled:
            return
        _rewrite_log(self.path, start)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            return
        self.board = SummaryWriter(str(out / "tensorboard"), purge_step=start + 1)

    def write(self, entry: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(entry) + "\n")
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


def _prepare_out(out: Path, world: World) -> None:
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} exists and is not a folder")
    if world.is_main:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create --out {out}: {exc.strerror or exc}") from None


def train(
    recipe: Recipe,
    source: Septuplets,
    out: str | os.PathLike,
    *,
    device: str = "auto",
    precision: str = "auto",
    workers: int = 0,
    init: Mapping[str, torch.Tensor] | None = None,
    validate: Validator | None = None,
    on_step: Callable[[Step], None] | None = None,
    extra: dict | None = None,
) -> TrainResult:
    """Train ``STDAN(recipe.model)`` on ``source`` into the folder ``out`` (see the module's
    docstring), starting from ``init`` weights (fine-tuning) or from the seeded initialisation,
    or resuming the run ``out`` holds. ``validate`` scores the model every ``recipe.val_every``
    iterations and at the end; ``extra`` is stored in every checkpoint (e.g. what a
    fine-tuning used). Under torchrun each process trains on its share of every batch."""
    recipe.check()
    out = Path(out)
    world = launched_world()
    if recipe.batch_size % world.size:
        raise OptionError(f"--batch-size {recipe.batch_size} is the global batch: it must be divisible by the "
                          f"{world.size} processes")
    dev = process_device(resolve_device(device), world)
    amp = autocast_dtype(precision, dev)
    _prepare_out(out, world)
    last = out / LAST
    state = load_checkpoint(last) if last.exists() else None
    if state is not None:
        mismatch = _recipe_mismatch(state["recipe"], recipe)
        if mismatch:
            raise JobMismatch(f"{out} holds a run with another recipe ({'; '.join(mismatch[:3])}); run it with the "
                              f"same options to continue it, or choose another --out")
    start = int(state["iteration"]) if state is not None else 0
    if start < recipe.iterations:  # a sample too small for the crop: now, not after the model is built
        check_sample(source, recipe)

    torch.manual_seed(recipe.seed)
    model = STDAN(recipe.model)
    if state is not None:
        model.load_state_dict(state["params"], strict=True)
    elif init is not None:
        check_state_dict(init, recipe.model)
        model.load_state_dict(init, strict=True)
    model.to(dev).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr, betas=recipe.betas,
                                 weight_decay=recipe.weight_decay)
    scaler = torch.amp.GradScaler(dev.type, enabled=amp == torch.float16)
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        restore_rng_states(state["rng"])
    del state

    join(world, dev)
    try:
        # With two input frames (frames=3) the recurrence never reaches its hidden-state convolutions.
        net = DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None,
                                      broadcast_buffers=False, find_unused_parameters=recipe.frames < 5) \
            if world.distributed else model
        return _loop(recipe, source, out, model, net, optimizer, scaler, amp, dev, world, start, workers,
                     validate, on_step, extra)
    finally:
        leave(world)


def _validate(model: STDAN, recipe: Recipe, dev: torch.device, validate: Validator) -> dict:
    model.eval()
    try:
        upscaler = StdanUpscaler(model, describe_config(recipe.model), dev, "fp32")
        return {f"val_{k}": float(v) for k, v in validate(upscaler).items()}
    finally:
        model.train()


def _loop(recipe, source, out, model, net, optimizer, scaler, amp, dev, world, start, workers, validate,
          on_step, extra) -> TrainResult:
    total = recipe.iterations
    log = _Log(out, start, world.is_main)
    schedule = {"name": "CosineAnnealingLR_Restart", "periods": list(recipe.periods),
                "restart_weights": list(recipe.restart_weights), "eta_min": recipe.eta_min}

    def save(iteration: int) -> None:
        if world.is_main:
            save_checkpoint(out / LAST, model=model, optimizer=optimizer, scaler=scaler, iteration=iteration,
                            recipe=recipe.to_dict(), schedule={**schedule, "last_iteration": iteration}, extra=extra)

    iteration, loss_value, scores, since_log = start, None, {}, []
    batches = loader(source, recipe, start, world.rank, world.size, workers, pin_memory=dev.type == "cuda")
    started = time.perf_counter()
    try:
        with _stop_requests() as stop_requested:
            stream = iter(batches)
            while iteration < total:
                try:
                    lq, gt = next(stream)
                except StdanError as exc:  # from a data worker: its message carries the worker's traceback
                    last = str(exc).strip().splitlines()[-1]
                    raise type(exc)(last.split(": ", 1)[-1] if last.startswith(type(exc).__module__) else last) \
                        from None
                except RuntimeError:
                    if stop_requested():  # data workers were interrupted too
                        raise KeyboardInterrupt from None
                    raise
                iteration += 1
                lr = lr_at(recipe, iteration)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                lq, gt = lq.to(dev, non_blocking=True), gt.to(dev, non_blocking=True)
                with torch.autocast(dev.type, dtype=amp or torch.float32, enabled=amp is not None):
                    output = net(lq)
                loss = charbonnier(output.float(), gt, recipe.charbonnier_eps)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if recipe.grad_clip is not None:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                loss_value, stop = step_summary(loss, stop_requested(), world)
                if not math.isfinite(loss_value):
                    raise TrainingDiverged(f"the loss is {loss_value} at iteration {iteration}; lower the learning rate "
                                      f"or use --precision fp32 (the last good checkpoint is {out / LAST})")
                since_log.append(loss_value)
                entry = None
                if iteration % recipe.log_every == 0 or iteration == total:
                    entry = {"iter": iteration, "loss": loss_value, "loss_mean": sum(since_log) / len(since_log),
                             "lr": lr, "seconds": round(time.perf_counter() - started, 3)}
                    since_log = []
                validating = validate is not None and (
                    (recipe.val_every and iteration % recipe.val_every == 0) or iteration == total)
                step_scores = None
                if validating and world.is_main:
                    step_scores = scores = _validate(model, recipe, dev, validate)
                    entry = {**(entry or {"iter": iteration, "loss": loss_value, "lr": lr}), **scores}
                if entry is not None:
                    log.write(entry)
                if iteration % recipe.save_every == 0 or iteration == total:
                    save(iteration)
                if on_step is not None and world.is_main:
                    on_step(Step(iteration, total, start, loss_value, lr, step_scores, entry is not None))
                # A request that came during on_step counts for this iteration when alone (with
                # several processes, the next iteration's all-reduce decides it, for all at once).
                if (stop or (not world.distributed and stop_requested())) and iteration < total:
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        if iteration > start:
            save(iteration)
        raise JobInterrupted(f"interrupted at iteration {iteration} of {total}; "
                             + (f"saved {out / LAST}: run the same command to continue" if iteration > start
                                else "nothing new to save")) from None
    finally:
        log.close()
    return TrainResult(out, out / LAST, iteration, start, loss_value, scores)

