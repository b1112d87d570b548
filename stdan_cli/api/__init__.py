"""The Python API of ``stdan upscale``: what the command line calls, importable as it is.

- :func:`load_model`, :func:`describe_checkpoint`: what ``--weights`` takes (a path, or a
  registry name such as ``stdan-vimeo`` or its file name, found in the weights cache), with
  :func:`upscale_window` to run one window.
- :func:`upscale_video`: one input to one output (plan, then the job driver).
- :func:`plan_batch`, :func:`check_batch`, :func:`run_batch`: several inputs into a folder,
  each with the same options (the job options too) and one upscaler.

Layer order: cli -> api -> jobs and cluster -> pipeline -> upscalers and video -> model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from stdan_cli.api.batch import BatchItem, BatchResult, check_batch, plan_batch, run_batch
from stdan_cli.jobs import Executor, JobSummary, run_job
from stdan_cli.jobs.runner import ProgressFn
from stdan_cli.model import LoadedModel, ModelDescriptor, upscale_window
from stdan_cli.model import describe_checkpoint as _describe
from stdan_cli.model import load_model as _load
from stdan_cli.pipeline import UpscaleOptions, plan_upscale
from stdan_cli.pipeline.precheck import is_batch
from stdan_cli.upscalers import Upscaler


def _checkpoint(checkpoint):
    """A path that exists stays a path; a name is looked up in the weights cache (as ``--weights``)."""
    if isinstance(checkpoint, (str, os.PathLike)) and not Path(checkpoint).expanduser().is_file():
        from stdan_cli.weights import resolve_weights

        return resolve_weights(checkpoint)
    return checkpoint


def load_model(checkpoint, device="cpu", dtype=None) -> LoadedModel:
    """:func:`stdan_cli.model.load_model` for what ``--weights`` takes: a path, a registry name
    (``"stdan-vimeo"``) or its file name (``"STDAN_20220306.pth"``) found in the weights cache
    (``stdan download-weights`` puts it there), or a state_dict, plain or wrapped."""
    import torch

    return _load(_checkpoint(checkpoint), device=device, dtype=dtype or torch.float32)


def describe_checkpoint(checkpoint) -> ModelDescriptor:
    """:func:`stdan_cli.model.describe_checkpoint` for what :func:`load_model` takes."""
    return _describe(_checkpoint(checkpoint))


def upscale_video(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    upscaler: Upscaler,
    options: UpscaleOptions = UpscaleOptions(),
    progress: ProgressFn | None = None,
    notify: Callable[[str], None] | None = None,
    executor: Executor | None = None,
) -> JobSummary:
    """``stdan upscale`` as a function: plan (every check first), then run the job."""
    plan = plan_upscale(input_path, output_path, upscaler.descriptor, options, upscaler.device)
    return run_job(plan, upscaler, executor, progress, notify or (lambda line: None))


__all__ = ["BatchItem", "BatchResult", "JobSummary", "check_batch", "describe_checkpoint", "is_batch", "load_model",
           "plan_batch", "run_batch", "upscale_video", "upscale_window"]
