"""``stdan train`` and ``stdan finetune`` as functions: thin, they call what the training package
offers (:func:`stdan_cli.training.train`, :func:`stdan_cli.training.finetune.finetune`) with the
thread count scoped to the run and the default starting weights found (downloaded on first use)."""

from __future__ import annotations

import os
from typing import Callable, Sequence

NO_OVERRIDES: dict = {}


def is_main_process() -> bool:
    """Whether this process reports (the only one, or rank 0 under torchrun)."""
    from stdan_cli.training.distributed import launched_world

    return launched_world().is_main


def run_train(data_root: str | os.PathLike, out: str | os.PathLike, *, config: str | None = None,
              overrides: dict = NO_OVERRIDES, device: str = "auto", precision: str = "fp32",
              threads: int | None = None, workers: int = 0, val_dataset: str = "vimeo-fast",
              val_root: str | os.PathLike | None = None, val_limit: int | None = None,
              val_list: str | os.PathLike | None = None, keep: int | None = None, ema: float | None = None,
              val_images: bool = False, on_step: Callable | None = None,
              notify: Callable[[str], None] = lambda line: None):
    """Train on the Vimeo-90K septuplets under ``data_root`` into ``out`` with the recipe
    ``config`` (official, small or a file) and ``overrides`` (None values ignored); validation
    on ``val_dataset``'s clips under ``val_root`` (default ``data_root``), the first
    ``val_limit`` present (or those ``val_list`` names), when the recipe asks for it. With no
    clips present training goes on without validation and ``notify`` says so."""
    from stdan_cli.training import load_recipe, train
    from stdan_cli.training.samples import VimeoSeptuplets
    from stdan_cli.training.validation import dataset_clips, dataset_validator
    from stdan_cli.upscalers import intra_op_threads

    with intra_op_threads(threads):
        recipe = load_recipe(config or "official", **overrides)
        source = VimeoSeptuplets.open(data_root, recipe.frames)
        validate, clips = None, ()
        if recipe.val_every:
            clips = dataset_clips(val_dataset, val_root or data_root, val_limit, val_list)
            if not clips:
                notify(f"no {val_dataset} clips under {val_root or data_root}: training without validation "
                       "(--val-root DIR or --val-list FILE name clips; --val-every 0 silences this)")
            validate = dataset_validator(val_dataset, clips, recipe.degradation) if clips else None
        data = source.describe() | {"val_dataset": val_dataset, "val_root": str(val_root or data_root),
                                    "val_clips": [c.name for c in clips]}
        return train(recipe, source, out, device=device, precision=precision, workers=workers, validate=validate,
                     on_step=on_step, keep=keep, ema=ema, val_images=val_images, data=data)


def starting_weights(start: str | os.PathLike, quiet: bool = False) -> str | os.PathLike:
    """The checkpoint file of ``--from``: a file as it is, a registry name from the cache
    (downloaded on first use, with a bar unless ``quiet``)."""
    from stdan_cli.weights.first_run import weights_for_run

    return weights_for_run(start, quiet=quiet)


def run_finetune(videos: Sequence[str | os.PathLike], weights: str | os.PathLike, out: str | os.PathLike, *,
                 config: str | None = None, overrides: dict = NO_OVERRIDES, device: str = "auto",
                 precision: str = "fp32", threads: int | None = None, workers: int = 0, holdout: int = 2,
                 scene_threshold: float | None = None, keep: int | None = None, ema: float | None = None,
                 val_images: bool = False, on_phase: Callable | None = None, on_step: Callable | None = None):
    """Fine-tune the checkpoint file ``weights`` (:func:`starting_weights`) on ``videos`` into
    ``out``; the held-out septuplets are scored before and after."""
    from stdan_cli.training.finetune import finetune
    from stdan_cli.upscalers import intra_op_threads

    with intra_op_threads(threads):
        extra = {"scene_threshold": scene_threshold} if scene_threshold is not None else {}
        return finetune(videos, weights, out, config=config, device=device, precision=precision,
                        workers=workers, holdout=holdout, on_phase=on_phase, on_step=on_step, keep=keep, ema=ema,
                        val_images=val_images, **extra, **overrides)
