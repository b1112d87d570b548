"""Fine-tuning a released (or any) STDAN checkpoint on a user's own clips.

The clips become septuplets (:mod:`stdan_cli.training.footage`), a few held out; the held-out
scores (the evaluation protocol: frames 1, 3, 5, 7 in, all 7 scored) are measured with the
starting weights, the model trains on the rest with the recipe, and the same scores are
measured again at the end. The checkpoint records the recipe, the starting weights and both
scores; it loads in ``stdan upscale --weights`` and ``stdan eval --weights`` as it is.

Unless a recipe file says otherwise, fine-tuning changes the official recipe where training
from scratch and adapting differ: fewer iterations (:data:`FINETUNE_DEFAULTS`) in one cosine
period, a smaller learning rate and batch, and more frequent validation and checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import torch

from stdan_cli.errors import OptionError
from stdan_cli.model import STDAN, describe_checkpoint, describe_config, read_state_dict
from stdan_cli.pipeline.scenes import DEFAULT_THRESHOLD
from stdan_cli.training.checkpoint import LAST, load_checkpoint
from stdan_cli.training.distributed import join, launched_world, process_device
from stdan_cli.training.footage import FOOTAGE, Footage, existing_footage, prepare_footage
from stdan_cli.training.recipe import RECIPES, Recipe, load_recipe
from stdan_cli.training.run_folder import open_run_folder
from stdan_cli.training.samples import ArraySeptuplets
from stdan_cli.training.trainer import Step, TrainResult, train
from stdan_cli.training.validation import clips_validator
from stdan_cli.upscalers import resolve_device
from stdan_cli.upscalers.stdan import StdanUpscaler
from stdan_cli.weights.store import sha256_file

FINETUNE_DEFAULTS = dict(iterations=2000, lr=5e-5, batch_size=4, val_every=500, save_every=500, log_every=50)


@dataclass
class FinetuneResult:
    run: TrainResult
    footage: Footage
    before: dict  # held-out scores of the starting weights (psnr, ssim, psnr_y, ssim_y)
    after: dict  # of the fine-tuned weights


def finetune_recipe(spec: str | None, config, **overrides) -> Recipe:
    """The recipe for fine-tuning a network of ``config``: ``spec`` (default: the official
    recipe on the checkpoint's own network) with :data:`FINETUNE_DEFAULTS` under a built-in
    recipe, and ``overrides`` (None values ignored) over everything."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if spec is None or spec in RECIPES:
        values = {**FINETUNE_DEFAULTS, **overrides}
        iterations = values.pop("iterations")
        base = load_recipe(spec or "official")
        recipe = replace(base, model=config if spec is None else base.model, iterations=iterations,
                         periods=(iterations,), restart_weights=())
        recipe = replace(recipe, name=f"finetune:{spec or 'official'}",
                         **{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
    else:
        recipe = load_recipe(spec, **overrides)
    if recipe.model != config:
        raise OptionError(f"--config {spec} describes another network than the starting checkpoint "
                          f"(nf {recipe.model.nf} vs {config.nf}, embed_dim {recipe.model.embed_dim} vs "
                          f"{config.embed_dim}); leave --config out to use the checkpoint's own")
    recipe.check()
    return recipe


def _scores_of(weights: dict, config, footage: Footage, device: str, degradation: str) -> dict:
    model = STDAN(config)
    model.load_state_dict(weights, strict=True)
    dev = resolve_device(device)
    upscaler = StdanUpscaler(model.to(dev).eval(), describe_config(config), dev, "fp32")
    return {f"val_{k}": v for k, v in clips_validator(footage.held, degradation)(upscaler).items()}


def finetune(
    videos: Sequence[str | os.PathLike],
    weights: str | os.PathLike,
    out: str | os.PathLike,
    *,
    config: str | None = None,
    device: str = "auto",
    precision: str = "fp32",
    workers: int = 0,
    holdout: int = 2,
    scene_threshold: float = DEFAULT_THRESHOLD,
    on_phase: Callable[[str], None] | None = None,
    on_step: Callable[[Step], None] | None = None,
    keep: int | None = None,
    ema: float | None = None,
    val_images: bool = False,
    **overrides,
) -> FinetuneResult:
    """Fine-tune the checkpoint file ``weights`` on ``videos`` into the folder ``out`` (see
    the module's docstring); ``overrides`` are recipe values (iterations, batch_size, ...).
    Running it again on the same folder continues the run."""
    if holdout < 1:
        raise OptionError("--holdout must be at least 1: the held-out clips measure the fine-tuning")
    phase = on_phase or (lambda text: None)
    init = read_state_dict(weights)
    net_config = describe_checkpoint(init).config
    recipe = finetune_recipe(config, net_config, **overrides)
    out = Path(out)
    world = launched_world()
    join(world, process_device(resolve_device(device), world))  # the main process makes the samples, then all train
    folder = open_run_folder(out, world.is_main)  # the run's folder before its footage goes in
    folder.check_own(FOOTAGE)
    folder.check_own(LAST)
    folder.claim({})
    folder.record_file(FOOTAGE)
    phase("making training septuplets from the clips (scene cuts found and avoided)")
    if world.is_main:
        footage = prepare_footage(videos, out, frames=recipe.frames, threshold=scene_threshold, holdout=holdout)
    if world.distributed:  # the others read what the main process made
        torch.distributed.barrier()
        if not world.is_main:
            footage = existing_footage(videos, out, frames=recipe.frames, threshold=scene_threshold, holdout=holdout)
    last = out / LAST
    saved = load_checkpoint(last).get("finetune") if (folder.owns(LAST) or not folder.writer) and last.exists() \
        else None
    if saved is not None:
        before = saved["before"]
    elif world.is_main:
        phase(f"scoring the starting weights on {len(footage.held)} held-out clip(s)")
        before = _scores_of(init, net_config, footage, device, recipe.degradation)
    else:
        before = {}
    extra = {"finetune": {"from": str(weights), "from_sha256": sha256_file(weights), "videos": list(footage.videos), "holdout": holdout,
                          "scene_threshold": scene_threshold, "before": before}}
    phase(f"training on {len(footage.train)} septuplet(s)")
    run = train(recipe, ArraySeptuplets(footage.train), out, device=device, precision=precision, workers=workers,
                init=init, validate=clips_validator(footage.held, recipe.degradation), on_step=on_step, extra=extra,
                keep=keep, ema=ema, val_images=val_images,
                data={"videos": list(footage.videos), "from": str(weights), "from_sha256": extra["finetune"]["from_sha256"]})
    after = run.scores
    if not after and world.is_main:  # the run was already complete: score its checkpoint
        after = _scores_of(read_state_dict(run.checkpoint), net_config, footage, device, recipe.degradation)
    return FinetuneResult(run, footage, before, after)
