"""The named upscalers behind ``--model``, and the one function that builds them.

``upscale`` and ``eval`` both take their upscaler from :func:`build_upscaler`, so the two
commands share one definition of ``--model``, ``--weights``, ``--device``, ``--precision``
and ``--threads``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from stdan_cli.errors import OptionError

if TYPE_CHECKING:  # the table is read by --help, which must not load PyTorch
    import torch

    from stdan_cli.upscalers.base import Upscaler


@dataclass(frozen=True)
class UpscalerEntry:
    name: str
    help: str
    needs_weights: bool  # a checkpoint (``--weights``, else the default, downloaded on first use)
    build: Callable[[str | os.PathLike | None, "torch.device", str], "Upscaler"]  # (weights, device, precision)


def build_stdan(weights, device, precision) -> "Upscaler":
    from stdan_cli.upscalers.stdan import build_stdan

    return build_stdan(weights, device, precision)


def build_bicubic(weights, device, precision) -> "Upscaler":
    from stdan_cli.upscalers.bicubic import build_bicubic

    return build_bicubic(weights, device, precision)


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
    from stdan_cli.upscalers.device import check_threads, resolve_device
    from stdan_cli.upscalers.engines import get_backend, place
    from stdan_cli.upscalers.stdan import build_stdan_engine

    check_threads(threads)
    if get_backend(backend).engine:
        if model != "stdan":
            raise OptionError(f"--backend {backend} runs the STDAN network; --model {model} runs in PyTorch only")
        placement = place(backend, device, precision)  # one line for a backend missing or on the wrong device
        upscaler = build_stdan_engine(weights, placement, threads)
    else:  # eager PyTorch
        upscaler = UPSCALERS[model].build(weights, resolve_device(device), precision)
    upscaler.threads = threads  # used for its calls only (stdan_cli.upscalers.device.intra_op_threads)
    return upscaler
