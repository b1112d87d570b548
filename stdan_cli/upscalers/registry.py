"""The named upscalers behind ``--model``, and the one function that builds them.

``upscale`` and ``eval`` both take their upscaler from :func:`build_upscaler`, so the two
commands share one definition of ``--model``, ``--weights``, ``--device``, ``--precision``
and ``--threads``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import torch

from stdan_cli.errors import OptionError
from stdan_cli.upscalers.base import Upscaler
from stdan_cli.upscalers.bicubic import build_bicubic
from stdan_cli.upscalers.device import resolve_device, set_threads
from stdan_cli.upscalers.stdan import build_stdan, build_stdan_engine


@dataclass(frozen=True)
class UpscalerEntry:
    name: str
    help: str
    needs_weights: bool  # a checkpoint (``--weights``, else the default, downloaded on first use)
    build: Callable[[str | os.PathLike | None, torch.device, str], Upscaler]  # (weights, device, precision)


UPSCALERS = {
    entry.name: entry
    for entry in (
        UpscalerEntry("stdan", "STDAN, the official network (needs its weights)", True, build_stdan),
        UpscalerEntry("bicubic", "bicubic x4 and averaged in-between frames (a baseline; no weights)", False, build_bicubic),
    )
}


def build_upscaler(
    model: str = "stdan",
    weights: str | os.PathLike | None = None,
    device: str = "auto",
    precision: str = "auto",
    threads: int | None = None,
    backend: str = "torch",
) -> Upscaler:
    """The upscaler behind ``--model/--weights/--device/--precision/--threads/--backend``."""
    if model not in UPSCALERS:
        raise OptionError(f"unknown model '{model}'; use one of {', '.join(UPSCALERS)}")
    from stdan_cli.engines import get_backend, place

    if not get_backend(backend).engine:  # eager PyTorch
        set_threads(threads)
        return UPSCALERS[model].build(weights, resolve_device(device), precision)
    if model != "stdan":
        raise OptionError(f"--backend {backend} runs the STDAN network; --model {model} runs in PyTorch only")
    placement = place(backend, device, precision)  # one line for a backend missing or on the wrong device
    set_threads(threads)
    return build_stdan_engine(weights, placement, threads)
